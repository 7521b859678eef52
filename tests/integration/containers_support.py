"""Helpers for container tests: the docker CLI, images, leak checks, cgroup lookups."""

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import ServerProcess, wait_for

IMAGE = "acc-busybox"
#: Tests that drive a real client skip on machines without it.
needs_cli = pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI not installed")
needs_podman = pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed")


def docker(
    server: ServerProcess,
    *args: str,
    check: bool = True,
    timeout: float = 60,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI against ``server``."""
    result = subprocess.run(
        ["docker", *args],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "DOCKER_HOST": server.uri},
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def mounts_below(path: Path) -> list[str]:
    """Mount points under ``path`` (leak checks)."""
    prefix = str(path) + "/"
    return [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]


def container_cgroups(ids: set[str] | None = None) -> list[str]:
    """``podapi/<id>`` cgroup directories present in any hierarchy (leak checks): containers'
    and pods' (a pod's containers nest in ``podapi/<pod id>``).

    :param ids: only these containers' and pods' (other suites may run containers at the
        same time).
    """
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        key, own = line.split(":", 2)[1:]
        mount = Path("/sys/fs/cgroup") / (key.removeprefix("name=") or "unified")
        parent = mount / own.lstrip("/") / "podapi"
        if parent.is_dir():
            found += [
                str(p) for p in parent.iterdir() if p.is_dir() and (ids is None or p.name in ids)
            ]
    return found


def containers_created_by(server: ServerProcess, kind: str = "container") -> set[str]:
    """IDs of every container (or pod) ``server`` (its root) ever created, from its event log."""
    ids = set()
    for log in (server.root / "events").glob("events.log*"):
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event["type"] == kind and event["action"] == "create":
                ids.add(event["id"])
    return ids


def conmon_pids_for(root: Path) -> list[int]:
    """conmon processes whose command line mentions ``root`` (leak checks)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("/usr/bin/conmon") and str(root) in cmdline:
            pids.append(int(proc.name))
    return pids


def cgroup_file(pid: int, controller: str, name: str) -> str:
    """Read a cgroup v1 file of a process (resource limit checks)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, keys, path = line.split(":", 2)
        if controller in keys.split(","):
            return (Path("/sys/fs/cgroup") / keys / path.lstrip("/") / name).read_text().strip()
    raise AssertionError(f"no {controller} cgroup for {pid}")


def load_image(server: ServerProcess, archive: Path) -> None:
    """``docker load`` an archive into ``server``."""
    reply = server.request("POST", "/v1.44/images/load", body=archive.read_bytes())
    assert reply.status == 200, reply.body


def assert_nothing_leaked(server: ServerProcess) -> None:
    """No mounts, cgroups, conmons or container files are left behind by ``server``."""
    assert mounts_below(server.base) == []
    made = containers_created_by(server) | containers_created_by(server, "pod")
    assert container_cgroups(made) == []
    # conmon outlives its container by the run of its exit command.
    wait_for(lambda: conmon_pids_for(server.root) == [], timeout=30)
    assert list((server.root / "containers").iterdir()) == []
    assert list((server.runroot / "containers").iterdir()) == []
    assert list((server.runroot / "runtime").iterdir()) == []


def process_gone(pid: int) -> Callable[[], bool]:
    """A test for ``wait_for``: ``pid`` has exited (a zombie counts: it has exited too)."""

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie still answers kill(0); it has exited all the same.
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")

    return gone


def podman(
    server: ServerProcess,
    home: Path,
    *args: str,
    check: bool = True,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``podman --remote`` against ``server`` (``home`` keeps its config out of the real one)."""
    result = subprocess.run(
        ["podman", "--remote", "--url", server.uri, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HOME": str(home)},
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def server_with_image(
    tmp_path_factory: pytest.TempPathFactory, name: str, archive: Path
) -> ServerProcess:
    """A started server of its own with ``archive`` (the test image) loaded."""
    server = ServerProcess(tmp_path_factory.mktemp(name)).start()
    reply = server.request("POST", "/v1.44/images/load", body=archive.read_bytes())
    assert reply.status == 200, reply.body
    return server
