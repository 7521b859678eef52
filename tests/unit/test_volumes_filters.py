"""Volume list/prune filters and the local driver's options."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from podapi.engine.state.volumes import VolumeRecord, VolumeUsage
from podapi.engine.volumefilters import build_filter
from podapi.engine.volumes import check_local_options, needs_mount
from podapi.errors import InvalidArgument

NS = 1_000_000_000
NOW = 1_700_000_000 * NS

VOLUMES = [
    VolumeUsage(
        VolumeRecord("web-data", "local", NOW - 300 * NS, labels={"tier": "web", "env": "prod"}),
        users=("c1",),
    ),
    VolumeUsage(
        VolumeRecord(
            "cache",
            "local",
            NOW - 200 * NS,
            labels={"tier": "cache"},
            options={"type": "tmpfs", "o": "size=1m"},
        ),
        holders=("c2",),
        users=("c2",),
    ),
    VolumeUsage(VolumeRecord("a" * 64, "local", NOW - 100 * NS, anonymous=True)),
    VolumeUsage(VolumeRecord("spare", "local", NOW - 10 * NS, labels={"env": ""})),
]
ANCHORS = {v.record.name: v.record for v in VOLUMES}


def select(filters: Mapping[str, Sequence[str]], *, prune: bool = False) -> list[str]:
    keep = build_filter(filters, prune=prune, anchors=ANCHORS, now_ns=NOW)
    return [v.record.name for v in VOLUMES if keep(v)]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["web-data", "cache", "a" * 64, "spare"]),
        ({"name": ["web"]}, ["web-data"]),
        ({"name": ["^c", "^s"]}, ["cache", "spare"]),  # values of one key: any
        ({"driver": ["local"]}, ["web-data", "cache", "a" * 64, "spare"]),
        ({"driver": ["other"]}, []),
        ({"label": ["tier"]}, ["web-data", "cache"]),
        ({"label": ["tier=web", "env=prod"]}, ["web-data"]),  # label values: all
        ({"label": ["env="]}, ["spare"]),
        ({"label!": ["tier"]}, ["a" * 64, "spare"]),
        ({"opt": ["type=tmpfs"]}, ["cache"]),
        ({"opt": ["o"]}, ["cache"]),
        ({"dangling": ["true"]}, ["a" * 64, "spare"]),
        ({"dangling": ["0"]}, ["web-data", "cache"]),
        ({"anonymous": ["true"]}, ["a" * 64]),
        ({"since": ["cache"]}, ["a" * 64, "spare"]),
        ({"until": ["150s"]}, ["web-data", "cache"]),
        ({"until": [str(NOW // NS - 250)]}, ["web-data"]),
        ({"label": ["tier"], "dangling": ["false"], "name": ["cache"]}, ["cache"]),  # keys: all
    ],
)
def test_list_filters(filters: Mapping[str, Sequence[str]], expected: list[str]) -> None:
    assert select(filters) == expected


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"dangling": ["maybe"]}, "dangling"),
        ({"bogus": ["x"]}, '"bogus" is an invalid volume filter'),
        ({"name": ["("]}, "invalid name filter"),
    ],
)
def test_list_filters_refuse(filters: Mapping[str, Sequence[str]], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        select(filters)


@pytest.mark.parametrize("key", ["name", "driver", "scope", "opt", "dangling"])
def test_prune_refuses_list_only_filters(key: str) -> None:
    """Podman: ``"name" is an invalid volume filter`` for prune."""
    with pytest.raises(InvalidArgument, match=f'"{key}" is an invalid volume filter'):
        select({key: ["x"]}, prune=True)


def test_prune_filters() -> None:
    assert select({"label": ["env"], "anonymous": ["false"]}, prune=True) == ["web-data", "spare"]
    assert select({"until": ["50s"]}, prune=True) == ["web-data", "cache", "a" * 64]


def test_local_options(tmp_path: Path) -> None:
    assert check_local_options({}) == {}
    tmpfs = {"type": "tmpfs", "o": "size=64m,nodev", "device": "tmpfs"}
    assert check_local_options(tmpfs) == tmpfs
    bind = {"type": "none", "o": "bind", "device": str(tmp_path)}
    assert check_local_options(bind) == bind
    assert needs_mount(VolumeRecord("v1", "local", 0, options=bind))
    assert not needs_mount(VolumeRecord("v1", "local", 0))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": "1m"}, "invalid mount option size"),
        ({"type": "tmpfs", "o": "size=lots"}, "bad size"),
        ({"type": "none", "o": "bind"}, "needs device"),
        ({"type": "none", "o": "bind", "device": "/no/such/dir"}, "not an existing host"),
        ({"type": "bind", "device": "relative"}, "not an existing host"),
        ({"type": "ext4", "device": "/dev/sda1"}, "unsupported volume type"),
        ({"o": "size=1m"}, "need type=tmpfs"),
    ],
)
def test_local_options_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check_local_options(options)
