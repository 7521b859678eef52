"""Pods: status derivation (Podman's ``createPodStatusResults``), list filters, the pod
spec decoder, the pause image's layer and pod rows."""

import io
import sqlite3
import tarfile
from pathlib import Path

import pytest

from podapi.engine.containerspec import ContainerSpec, NetworkEndpoint, RunConfig
from podapi.engine.infraimage import ENTRYPOINT, pause_config, pause_layer
from podapi.engine.podfilters import PodView, pod_matcher
from podapi.engine.podspec import DEFAULT_SHARE, PodSpec, check_share, pod_status
from podapi.engine.state import pods as rows
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.state.database import migrate
from podapi.engine.state.pods import PodRecord
from podapi.errors import Conflict, InvalidArgument
from podapi.http.call import BadRequest
from podapi.http.libpod.pods import bytes_size, decode_pod_spec, encode_inspect, human_size


@pytest.mark.parametrize(
    ("states", "status"),
    [
        ([], "Created"),
        (["created", "created"], "Created"),
        (["initialized"], "Created"),
        (["running", "running"], "Running"),
        (["running", "exited"], "Degraded"),
        (["running", "created"], "Degraded"),
        (["paused", "paused"], "Paused"),
        (["paused", "exited"], "Stopped"),
        (["exited", "exited"], "Exited"),
        (["exited", "created"], "Stopped"),
        (["removing", "created"], "Dead"),
        (["paused", "created"], "Created"),
    ],
)
def test_pod_status(states: list[str], status: str) -> None:
    assert pod_status(states) == status


def test_check_share() -> None:
    assert check_share(["net", "ipc", "net", "cgroup", " uts "]) == ("net", "ipc", "uts")
    assert check_share(["pid"]) == ("pid",)
    with pytest.raises(InvalidArgument):
        check_share(["mnt"])


def _container(cid: str, name: str, state: str, pod: str = "p" * 64) -> ContainerRecord:
    run = RunConfig("sh", (), (), (), (), "/", "", "h", {}, "SIGTERM", 10, (), None)
    return ContainerRecord(
        id=cid,
        name=name,
        image_id="i",
        image_name="busybox",
        created=1,
        spec=ContainerSpec(image="busybox", pod=pod, networks=(NetworkEndpoint("podman"),)),
        run=run,
        state=state,
    )


def _view(state: str = "running") -> PodView:
    pod = PodRecord(
        id="ab" * 32, name="web", created=10**15, spec=PodSpec(labels={"a": "b"}), infra_id="1" * 64
    )
    return PodView(pod, (_container("1" * 64, "infra", state), _container("2" * 64, "app", state)))


@pytest.mark.parametrize(
    ("filters", "matched"),
    [
        ({"name": ["^we"]}, True),
        ({"name": ["db"]}, False),
        ({"id": ["abab"]}, True),
        ({"label": ["a=b"]}, True),
        ({"label": ["a=c"]}, False),
        ({"status": ["running"]}, True),
        ({"status": ["exited"]}, False),
        ({"network": ["podman"]}, True),
        ({"network": ["other"]}, False),
        ({"ctr-names": ["app"]}, True),
        ({"ctr-ids": ["222"]}, True),
        ({"ctr-ids": ["333"]}, False),
        ({"ctr-status": ["running"]}, True),
        ({"ctr-number": ["2"]}, True),
        ({"ctr-number": ["3"]}, False),
        ({"name": ["web"], "ctr-number": ["3"]}, False),
        # Made at 1,000,000 s after the epoch: before 5,000,000,000 s, not before 500,000.
        ({"until": ["5000000000"]}, True),
        ({"until": ["500000"]}, False),
    ],
)
def test_filters(filters: dict[str, list[str]], matched: bool) -> None:
    assert pod_matcher(filters, 2 * 10**15)(_view()) is matched


@pytest.mark.parametrize(
    "filters",
    [
        {"bogus": ["x"]},
        {"status": ["sleepy"]},
        {"ctr-status": ["x"]},
        {"ctr-number": ["x"]},
        {"until": ["whenever"]},
    ],
)
def test_bad_filters(filters: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidArgument):
        pod_matcher(filters, 0)


def test_decode_pod_spec() -> None:
    spec = decode_pod_spec(
        {
            "name": "web",
            "labels": {"a": "b"},
            "hostname": "h",
            "share": ["net,ipc", "pid"],
            "portmappings": [{"container_port": 80, "host_port": 8080}],
            "Networks": {"podman": {}},
            "dns_server": ["1.1.1.1"],
            "netns": {"nsmode": "host"},
        }
    )
    assert spec.share == ("net", "ipc", "pid")
    assert spec.ports[0].host_port == 8080 and spec.ports[0].protocol == "tcp"
    assert spec.network_mode == "host" and spec.networks[0].name == "podman"
    assert decode_pod_spec({}).share == DEFAULT_SHARE
    for bad in ([], {"labels": [1]}, {"portmappings": [1]}, {"share": "net"}):
        with pytest.raises(BadRequest):
            decode_pod_spec(bad)


def test_encode_inspect_lists_containers_and_ports() -> None:
    body = encode_inspect(_view())
    assert body["State"] == "Running" and body["NumContainers"] == 2
    assert body["InfraContainerID"] == "1" * 64
    assert [c["Name"] for c in body["Containers"]] == ["infra", "app"]
    assert body["SharedNamespaces"] == list(DEFAULT_SHARE)


def test_sizes() -> None:
    assert human_size(1_234_567) == "1.235MB"
    assert bytes_size(2 * 1024 * 1024) == "2MiB"


def test_pause_layer_is_reproducible(tmp_path: Path) -> None:
    binary = tmp_path / "catatonit"
    binary.write_bytes(b"\x7fELF fake")
    first, second = pause_layer(str(binary)), pause_layer(str(binary))
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.mode) == ("catatonit", 0o755)
    config = pause_config("sha256:x", 0)
    assert config["config"]["Entrypoint"] == list(ENTRYPOINT)
    assert config["rootfs"]["diff_ids"] == ["sha256:x"]


def test_pod_rows() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    migrate(conn)
    record = PodRecord(id="ab" * 32, name="", created=5, spec=PodSpec(hostname="h"))
    stored = rows.insert(conn, record, lambda taken: "gen_name")
    assert stored.name == "gen_name"
    rows.set_infra(conn, stored.id, "c" * 64)
    assert rows.resolve(conn, "abab").infra_id == "c" * 64  # type: ignore[union-attr]
    assert rows.resolve(conn, "gen_name").spec.hostname == "h"  # type: ignore[union-attr]
    assert rows.resolve(conn, "zz") is None
    with pytest.raises(Conflict):
        rows.insert(conn, PodRecord(id="cd" * 32, name="gen_name", created=6, spec=PodSpec()))
    rows.delete(conn, stored.id)
    assert rows.load_all(conn) == []
