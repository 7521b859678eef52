"""OCI LinuxResources bodies (libpod create's resource_limits, libpod update)."""

from typing import Any

import pytest

from podapi.http.call import BadRequest
from podapi.http.libpod.specgen import linux_resources
from podapi.oci.spec import Resources, limits


def test_round_trip_with_the_spec_builder() -> None:
    body = {
        "memory": {"limit": 64, "reservation": 32, "swap": -1},
        "cpu": {"shares": 512, "quota": 5000, "period": 10000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 9},
        "blockIO": {"weight": 10},  # not ours to apply: ignored
    }
    parsed = linux_resources(body)
    assert parsed == Resources(
        memory=64,
        memory_swap=-1,
        memory_reservation=32,
        cpu_shares=512,
        cpu_quota=5000,
        cpu_period=10000,
        cpuset_cpus="0",
        cpuset_mems="0",
        pids_limit=9,
    )
    assert linux_resources(limits(parsed)) == parsed


def test_empty_sets_nothing() -> None:
    assert linux_resources({}) == Resources()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "a JSON object"),
        ({"memory": 5}, "body.memory"),
        ({"memory": {"limit": "64m"}}, "body.memory.limit"),
        ({"pids": {"limit": True}}, "body.pids.limit"),
        ({"cpu": {"cpus": 0}}, "body.cpu.cpus"),
    ],
)
def test_bad_types_are_400(body: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        linux_resources(body, "body")
