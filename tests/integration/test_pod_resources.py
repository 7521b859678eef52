"""What a pod holds beyond its namespaces: its cgroup (its containers nest in it), the
networks its infra container joins (a forced network removal takes the pod along), and
the CPU its containers use (``pod stats``)."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from podapi.oci.cgroups import hierarchy_dirs, own_cgroups
from tests.integration.containers_support import IMAGE, docker, needs_cli, needs_podman, podman
from tests.support import ServerProcess, UnixHTTPConnection

pytestmark = pytest.mark.integration

LIBPOD = "/v5.0.0/libpod"


def _one(output: str) -> dict[str, Any]:
    found = json.loads(output)
    return found[0] if isinstance(found, list) else found


def cgroups_of(pid: int) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` relative to this process's own cgroup, per hierarchy."""
    mine = own_cgroups()
    return {
        key: os.path.relpath(path, mine[key])
        for key, path in own_cgroups(f"/proc/{pid}/cgroup").items()
    }


def exists_anywhere(relative: str) -> bool:
    """Whether a cgroup (relative to ours) is present in any hierarchy."""
    return any(os.path.isdir(d) for d in hierarchy_dirs(relative))


@needs_podman
def test_pod_containers_nest_in_the_pod_cgroup(box: ServerProcess, tmp_path: Path) -> None:
    """As Podman's cgroupfs pods: the pod's cgroup is ``<parent>/<pod id>``, its containers'
    (infra included) are made in it in every hierarchy, and it goes with the pod."""
    pod_id = podman(box, tmp_path, "pod", "create", "--name", "pcg").stdout.strip()
    try:
        inspect = _one(podman(box, tmp_path, "pod", "inspect", "pcg").stdout)
        assert inspect["CgroupParent"] == "/podapi"
        assert inspect["CgroupPath"] == f"/podapi/{pod_id}"
        listed = podman(box, tmp_path, "pod", "ps", "--format", "{{.Cgroup}}").stdout
        assert "/podapi" in listed.split()
        cid = podman(box, tmp_path, "run", "-d", "--pod", "pcg", IMAGE, "sleep", "1000")
        cid_text = cid.stdout.strip()
        info = box.get_json(f"{LIBPOD}/containers/{cid_text}/json")
        assert info["State"]["CgroupPath"] == f"/podapi/{pod_id}/{cid_text}"
        assert info["HostConfig"]["CgroupParent"] == f"/podapi/{pod_id}"
        infra = box.get_json(f"{LIBPOD}/containers/{inspect['InfraContainerID']}/json")
        for container in (info, infra):
            placed = cgroups_of(container["State"]["Pid"])
            assert placed and set(placed.values()) == {f"podapi/{pod_id}/{container['Id']}"}

        stats = podman(box, tmp_path, "pod", "stats", "--no-stream", "--format", "json", "pcg")
        rows = {row["CID"]: row for row in json.loads(stats.stdout)}
        assert rows[cid_text[:12]]["MemUsage"] != "-- / --"
        assert rows[cid_text[:12]]["PIDS"] == "1"

        podman(box, tmp_path, "pod", "stop", "-t", "0", "pcg")
        # The containers' cgroups go at their exit; the pod's stays with the pod.
        assert not exists_anywhere(f"podapi/{pod_id}/{cid_text}")
        assert exists_anywhere(f"podapi/{pod_id}")
        podman(box, tmp_path, "pod", "rm", "pcg")
        assert not exists_anywhere(f"podapi/{pod_id}")
    finally:
        box.request("DELETE", f"{LIBPOD}/pods/pcg?force=true&timeout=0")


@needs_podman
def test_a_pod_cgroup_parent_is_honoured(box: ServerProcess, tmp_path: Path) -> None:
    """``pod create --cgroup-parent``: the pod's cgroup is made under it (relative to the
    server's cgroup, never at a hierarchy's root), and both go with the pod."""
    parent = "ptest-parent"
    created = podman(box, tmp_path, "pod", "create", "--name", "pcgp", "--cgroup-parent",
                     f"/{parent}")  # fmt: skip
    pod_id = created.stdout.strip()
    try:
        inspect = _one(podman(box, tmp_path, "pod", "inspect", "pcgp").stdout)
        assert (inspect["CgroupParent"], inspect["CgroupPath"]) == (
            f"/{parent}",
            f"/{parent}/{pod_id}",
        )
        cid = podman(box, tmp_path, "run", "-d", "--pod", "pcgp", IMAGE, "sleep", "1000")
        pid = box.get_json(f"{LIBPOD}/containers/{cid.stdout.strip()}/json")["State"]["Pid"]
        assert set(cgroups_of(pid).values()) == {f"{parent}/{pod_id}/{cid.stdout.strip()}"}
        podman(box, tmp_path, "pod", "rm", "-f", "-t", "0", "pcgp")
        assert not exists_anywhere(parent)
    finally:
        box.request("DELETE", f"{LIBPOD}/pods/pcgp?force=true&timeout=0")


@needs_cli
def test_docker_cgroup_parent(box: ServerProcess) -> None:
    """``docker run --cgroup-parent``: the container's cgroup is made under it and both go at
    removal; a parent that would leave the server's cgroup is a 400."""
    cid = docker(box, "run", "-d", "--cgroup-parent", "/ptest-docker/sub", IMAGE, "sleep", "1000")
    container = cid.stdout.strip()
    try:
        info = json.loads(docker(box, "inspect", container).stdout)[0]
        assert info["HostConfig"]["CgroupParent"] == "/ptest-docker/sub"
        assert set(cgroups_of(info["State"]["Pid"]).values()) == {f"ptest-docker/sub/{container}"}
        stats = docker(box, "stats", "--no-stream", "--format", "{{.MemUsage}}", container)
        assert not stats.stdout.startswith("0B")
        docker(box, "rm", "-f", container)
        assert not exists_anywhere("ptest-docker")
    finally:
        docker(box, "rm", "-f", container, check=False)
    refused = docker(box, "create", "--cgroup-parent", "../out", IMAGE, check=False)
    assert refused.returncode != 0 and "must not contain '..'" in refused.stderr


@needs_podman
@needs_cli
def test_forced_network_removal_takes_the_pod_along(box: ServerProcess, tmp_path: Path) -> None:
    """As Podman's ``NetworkRm``: without force, a network a pod's infra container joins is
    in use (409); ``network rm -f`` removes the pod with its containers, then the network.
    The compat route takes Podman's ``force`` too."""
    for tree, net in (("libpod", "ptest-net-a"), ("compat", "ptest-net-b")):
        podman(box, tmp_path, "network", "create", net)
        pod = f"{net}-pod"
        try:
            podman(box, tmp_path, "pod", "create", "--name", pod, "--network", net)
            podman(box, tmp_path, "run", "-d", "--pod", pod, "--name", f"{pod}-app", IMAGE,
                   "sleep", "1000")  # fmt: skip
            if tree == "libpod":
                refused = podman(box, tmp_path, "network", "rm", net, check=False)
            else:
                refused = docker(box, "network", "rm", net, check=False)
            assert refused.returncode != 0
            assert "associated containers" in refused.stderr
            if tree == "libpod":
                podman(box, tmp_path, "network", "rm", "-f", "-t", "0", net)
            else:
                reply = box.request("DELETE", f"/v1.41/networks/{net}?force=1&timeout=0")
                assert reply.status == 204, reply.body
            assert podman(box, tmp_path, "pod", "exists", pod, check=False).returncode == 1
            left = docker(box, "ps", "-a", "--format", "{{.Names}}").stdout.split()
            assert f"{pod}-app" not in left and not any(n.endswith("-infra") for n in left)
            assert net not in docker(box, "network", "ls", "--format", "{{.Name}}").stdout.split()
        finally:
            box.request("DELETE", f"{LIBPOD}/pods/{pod}?force=true&timeout=0")
            box.request("DELETE", f"{LIBPOD}/networks/{net}?force=true")


@needs_podman
def test_forced_volume_removal_takes_the_pod_container(box: ServerProcess, tmp_path: Path) -> None:
    """``volume rm -f`` of a volume a pod's container mounts removes that container (as
    Podman's ``removeVolume``); the pod stays with its infra container."""
    podman(box, tmp_path, "volume", "create", "ptest-vol")
    try:
        podman(box, tmp_path, "pod", "create", "--name", "pvol")
        podman(box, tmp_path, "run", "-d", "--pod", "pvol", "--name", "pvol-app", "-v",
               "ptest-vol:/data", IMAGE, "sleep", "1000")  # fmt: skip
        refused = podman(box, tmp_path, "volume", "rm", "ptest-vol", check=False)
        assert refused.returncode != 0 and "volume is in use" in refused.stderr
        podman(box, tmp_path, "volume", "rm", "-f", "-t", "0", "ptest-vol")
        inspect = _one(podman(box, tmp_path, "pod", "inspect", "pvol").stdout)
        assert [c["Name"] for c in inspect["Containers"]] == [f"{inspect['Id'][:12]}-infra"]
        assert podman(box, tmp_path, "volume", "exists", "ptest-vol", check=False).returncode == 1
    finally:
        box.request("DELETE", f"{LIBPOD}/pods/pvol?force=true&timeout=0")
        box.request("DELETE", f"{LIBPOD}/volumes/ptest-vol?force=true")


def _cpu(row: dict[str, str]) -> float:
    return 0.0 if row["CPU"] == "--" else float(row["CPU"].rstrip("%"))


@needs_podman
def test_pod_stats_cpu(box: ServerProcess, tmp_path: Path) -> None:
    """``pod stats``: a busy container shows its CPU, an idle one none; in a stream each
    report after the first has the CPU since the last one, so a container that was busy
    and went idle drops to ~0 there while a one-shot (Podman's: since its start) does not."""
    podman(box, tmp_path, "pod", "create", "--name", "pcpu")
    burst = (
        "end=$(( $(date +%s) + 2 )); while [ $(date +%s) -lt $end ]; do :; done; exec sleep 1000"
    )
    try:
        for name, script in (
            ("pcpu-spin", "while :; do :; done"),
            ("pcpu-idle", "exec sleep 1000"),
            ("pcpu-burst", burst),
        ):
            podman(box, tmp_path, "run", "-d", "--pod", "pcpu", "--name", name, IMAGE,
                   "sh", "-c", script)  # fmt: skip
        conn = UnixHTTPConnection(str(box.sock), timeout=30)
        try:
            conn.request("GET", f"{LIBPOD}/pods/stats?namesOrIDs=pcpu&stream=true&delay=1")
            response = conn.getresponse()
            assert response.status == 200
            reports = []
            for _ in range(20):  # one a second: the burst ends after 2
                line = response.readline()
                assert line, "the stats stream ended"
                reports.append({row["Name"]: row for row in json.loads(line)})
                if len(reports) > 1 and _cpu(reports[-1]["pcpu-burst"]) < 5:
                    break
            one_shot = podman(box, tmp_path, "pod", "stats", "--no-stream", "--format",
                              "json", "pcpu")  # fmt: skip
        finally:
            conn.close()
        latest = reports[-1]
        assert len(reports) > 1 and _cpu(latest["pcpu-burst"]) < 5, reports
        assert _cpu(latest["pcpu-spin"]) > 20, latest
        assert _cpu(latest["pcpu-idle"]) < 1, latest
        since_start = {row["Name"]: row for row in json.loads(one_shot.stdout)}
        assert _cpu(since_start["pcpu-burst"]) > 10, since_start
        # Since its start, the idle one's own start-up counts: a little above 0.
        assert _cpu(since_start["pcpu-spin"]) > 20 and _cpu(since_start["pcpu-idle"]) < 5
    finally:
        box.request("DELETE", f"{LIBPOD}/pods/pcpu?force=true&timeout=0", timeout=60)
