"""Decoding create bodies: the terminal's size, exposed ports, resource limits."""

from typing import Any

import pytest

from podapi.engine.containerspec import check_resources, exposed_ports
from podapi.engine.ocimodel import Resources
from podapi.errors import InvalidArgument
from podapi.http.call import BadRequest
from podapi.http.compat.createbody import decode_create


def _decode(host: dict[str, Any]) -> Any:
    return decode_create({"Image": "x", "Tty": True, "HostConfig": host}, None)


@pytest.mark.parametrize(("size", "decoded"), [([24, 80], (24, 80)), ([0, 0], None), (None, None)])
def test_console_size(size: Any, decoded: Any) -> None:
    assert _decode({"ConsoleSize": size}).console_size == decoded


@pytest.mark.parametrize("size", [[24], [24, 80, 1], [-1, 80], ["24", 80], [True, 80], "24x80"])
def test_console_size_refused(size: Any) -> None:
    with pytest.raises(BadRequest):
        _decode({"ConsoleSize": size})


def test_exposed_ports_are_canonical_and_checked() -> None:
    """What every encoder reads back as numbers: one ``PORT/PROTOCOL`` per port."""
    assert exposed_ports(["80", "8000-8001/TCP", "53/udp", "80/tcp"]) == (
        "80/tcp",
        "8000/tcp",
        "8001/tcp",
        "53/udp",
    )
    for bad in ("x", "0", "70000", "80/tcq", ""):
        with pytest.raises(InvalidArgument):
            exposed_ports([bad])
    # An image's unreadable keys are left out rather than stored.
    assert exposed_ports(["x", "80/tcq", "22"], strict=False) == ("22/tcp",)


def test_cpu_shares_clamped_and_cfs_values_checked() -> None:
    """Docker's checks: shares clamped to the kernel's range, period and quota bounded."""
    assert check_resources(Resources(cpu_shares=1)).cpu_shares == 2
    assert check_resources(Resources(cpu_shares=10**9)).cpu_shares == 262_144
    for refused in (Resources(cpu_period=999), Resources(cpu_quota=10), Resources(cpu_quota=-2)):
        with pytest.raises(InvalidArgument):
            check_resources(refused)
