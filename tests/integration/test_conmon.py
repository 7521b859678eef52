"""Containers under real conmon and runc: create, start, logs, exit files, lifecycle, cleanup.

Every container gets a busybox bundle of its own, a private runc ``--root``
and a relative cgroup ``podapi-test/<id>``; teardown deletes the containers,
kills the conmons this test started and removes the cgroup directories in
every hierarchy.  Waits are for events (inotify on the exit directory) with
bounded timeouts.
"""

import contextlib
import errno
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from podapi.oci.conmon import (
    ConmonConfig,
    Created,
    create_container,
    read_exit_file,
    reopen_log,
    resize,
)
from podapi.oci.exits import ExitWatcher
from podapi.oci.process import DEFAULT_PATH, ProcessRunner
from podapi.oci.runtime import NotInRuntime, OCIRuntime, RuntimeFailure

pytestmark = pytest.mark.integration

T = TypeVar("T")

RUNC = "/usr/sbin/runc"
CONMON = "/usr/bin/conmon"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "podapi-test"
WAIT = 15.0

if not (os.path.exists(RUNC) and os.path.exists(CONMON) and os.geteuid() == 0):
    pytest.skip("needs root, runc and conmon", allow_module_level=True)


def wait(d: "Deferred[T]", timeout: float = WAIT) -> "Deferred[T]":
    """``d`` with a bounded wait on the real reactor."""
    return d.addTimeout(timeout, reactor)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root filesystem shared by the module's containers."""
    root = tmp_path_factory.mktemp("rootfs")
    (root / "bin").mkdir()
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "echo", "sleep", "cat", "true"):
        (root / "bin" / applet).symlink_to("busybox")
    for name in ("proc", "sys", "dev", "tmp", "etc", "root"):
        (root / name).mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


@pytest.fixture(scope="module")
def spec_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """``runc spec``'s config.json."""
    where = tmp_path_factory.mktemp("spec")
    subprocess.run([RUNC, "spec"], cwd=where, check=True)
    spec: dict[str, object] = json.loads((where / "config.json").read_text())
    return spec


def own_cgroup_dirs() -> list[Path]:
    """This process's cgroup directory in every mounted hierarchy (they differ here)."""
    dirs = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            mount = CGROUP_ROOT / "unified" if (CGROUP_ROOT / "unified").is_dir() else CGROUP_ROOT
        else:
            mount = CGROUP_ROOT / controllers.removeprefix("name=")
        if mount.is_dir():
            dirs.append(mount / path.lstrip("/"))
    return dirs


def conmon_alive(pid: int) -> bool:
    """True if ``pid`` is (still) a conmon, so a reused pid is never killed."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "conmon"
    except OSError:
        return False


class Harness:
    """Bundles, conmon configs and the cleanup of everything they create."""

    def __init__(self, base: Path, rootfs: Path, template: dict[str, object]) -> None:
        self.base = base
        self.rootfs = rootfs
        self.template = template
        self.state_dir = base / "runc"
        self.exit_dir = base / "exits"
        self.state_dir.mkdir()
        self.exit_dir.mkdir()
        self.runtime = OCIRuntime(ProcessRunner(reactor), RUNC, str(self.state_dir))
        self.ids: list[str] = []
        self.conmon_pids: list[int] = []
        self.reported: list[str] = []
        self._waiting: dict[str, Deferred[int]] = {}
        self.watcher = ExitWatcher(reactor, str(self.exit_dir), self._exited)
        self.watcher.start()

    def _exited(self, container_id: str) -> None:
        self.reported.append(container_id)
        d = self._waiting.pop(container_id, None)
        code = read_exit_file(str(self.exit_dir), container_id)
        if d is not None and code is not None:
            d.callback(code)

    async def exit_code(self, container_id: str) -> int:
        """Wait for the container's exit file and return its code."""
        code = read_exit_file(str(self.exit_dir), container_id)
        if code is not None:
            return code
        d: Deferred[int] = Deferred()
        self._waiting[container_id] = d
        return await d.addTimeout(WAIT, reactor)

    def config(self, *args: str, **overrides: object) -> ConmonConfig:
        """A bundle running ``args`` and conmon's settings for it."""
        cid = uuid.uuid4().hex
        self.ids.append(cid)
        # Short: conmon binds <bundle>/attach, and sun_path has 108 bytes.
        bundle = self.base / cid[:12]
        bundle.mkdir()
        spec = json.loads(json.dumps(self.template))
        process = spec["process"]
        process["terminal"] = False
        process["args"] = list(args)
        process["rlimits"] = [self._clamp(r) for r in process.get("rlimits", [])]
        spec["root"] = {"path": str(self.rootfs), "readonly": False}
        spec["hostname"] = cid[:12]
        spec["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/{cid}"
        (bundle / "config.json").write_text(json.dumps(spec))
        values: dict[str, object] = {
            "container_id": cid,
            "name": f"test-{cid[:8]}",
            "bundle": str(bundle),
            "runtime": RUNC,
            "runtime_root": str(self.state_dir),
            "conmon": CONMON,
            "exit_dir": str(self.exit_dir),
            "pid_file": str(bundle / "pidfile"),
            "conmon_pid_file": str(bundle / "conmon.pid"),
            "log_path": str(bundle / "ctr.log"),
            "conmon_log": str(bundle / "conmon.log"),
            "env": {"PATH": DEFAULT_PATH},
        }
        values.update(overrides)
        return ConmonConfig(**values)  # type: ignore[arg-type]

    @staticmethod
    def _clamp(rlimit: dict[str, object]) -> dict[str, object]:
        # Without CAP_SYS_RESOURCE runc cannot raise a limit above ours.
        kind = getattr(resource, str(rlimit["type"]))
        _, hard = resource.getrlimit(kind)
        cap = hard if hard != resource.RLIM_INFINITY else 2**63 - 1
        return {
            "type": rlimit["type"],
            "soft": min(int(rlimit["soft"]), cap),  # type: ignore[call-overload]
            "hard": min(int(rlimit["hard"]), cap),  # type: ignore[call-overload]
        }

    async def create(self, config: ConmonConfig) -> Created:
        created = await create_container(reactor, config, timeout=WAIT)
        self.conmon_pids.append(created.conmon_pid)
        return created

    async def run(self, config: ConmonConfig) -> Created:
        created = await self.create(config)
        await self.runtime.start(config.container_id)
        return created

    def cgroup_leaf_dirs(self, cid: str) -> list[Path]:
        return [d / CGROUP_PARENT / cid for d in own_cgroup_dirs()]

    def cleanup(self) -> None:
        self.watcher.stop()
        for cid in self.ids:
            subprocess.run(
                [RUNC, "--root", str(self.state_dir), "delete", "--force", cid],
                capture_output=True,
                check=False,
            )
        for pid in self.conmon_pids:
            if conmon_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        leftovers = []
        for cid in self.ids:
            for leaf in self.cgroup_leaf_dirs(cid):
                for d in (leaf, leaf.parent):
                    try:
                        d.rmdir()
                    except OSError as e:
                        # The parent is shared with other tests' containers.
                        if e.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EBUSY):
                            raise
                        if d == leaf and e.errno != errno.ENOENT:
                            leftovers.append(str(d))
        assert not leftovers, f"cgroups left behind: {leftovers}"


@pytest.fixture
def harness(
    tmp_path_factory: pytest.TempPathFactory, rootfs: Path, spec_template: dict[str, object]
) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("c"), rootfs, spec_template)
    yield h
    h.cleanup()


def log_lines(path: str) -> list[tuple[str, str, str]]:
    """(stream, tag, text) from a k8s-file log."""
    lines = []
    for line in Path(path).read_text().splitlines():
        _time, stream, tag, text = line.split(" ", 3)
        lines.append((stream, tag, text))
    return lines


@pytest_twisted.ensureDeferred
async def test_exit_code_and_log(harness: Harness) -> None:
    """A container's exit code lands in the exit file and its output in the k8s-file log."""
    config = harness.config("sh", "-c", "echo hi; echo err >&2; exit 7")
    created = await harness.create(config)
    state = await harness.runtime.state(config.container_id)
    assert state is not None
    assert (state.status, state.pid) == ("created", created.pid)
    assert created.conmon_pid != created.pid
    await harness.runtime.start(config.container_id)

    assert await harness.exit_code(config.container_id) == 7
    assert ("stdout", "F", "hi") in log_lines(config.log_path)
    assert ("stderr", "F", "err") in log_lines(config.log_path)
    state = await harness.runtime.state(config.container_id)
    assert state is not None
    assert (state.status, state.pid) == ("stopped", 0)


@pytest_twisted.ensureDeferred
async def test_lifecycle_of_a_running_container(harness: Harness) -> None:
    """state, ps, update, exec, pause/resume, TERM ignored by PID 1, KILL gives 137, delete."""
    config = harness.config("sleep", "1000")
    cid = config.container_id
    created = await harness.run(config)
    runtime = harness.runtime

    state = await runtime.state(cid)
    assert state is not None
    assert (state.status, state.pid) == ("running", created.pid)
    assert await runtime.ps(cid) == [created.pid]

    await runtime.update(cid, {"pids": {"limit": 123}})
    pids_dirs = [d for d in harness.cgroup_leaf_dirs(cid) if (d / "pids.max").exists()]
    assert pids_dirs
    assert (pids_dirs[0] / "pids.max").read_text().strip() == "123"

    result = await runtime.exec_simple(
        cid, ["sh", "-c", 'echo "$FOO $(pwd)"; exit 3'], env={"FOO": "bar"}, cwd="/tmp"
    )
    assert (result.exit_code, result.stdout) == (3, b"bar /tmp\n")
    missing = await runtime.exec_simple(cid, ["/no/such/program"])
    assert missing.exit_code == 255
    assert b"/no/such/program" in missing.stderr
    assert not missing.stderr.startswith(b"{")

    await runtime.pause(cid)
    state = await runtime.state(cid)
    assert state is not None
    assert state.status == "paused"
    await runtime.resume(cid)
    state = await runtime.state(cid)
    assert state is not None
    assert state.status == "running"

    reopen_log(config.bundle)  # conmon is there to read the ctl FIFO

    await runtime.kill(cid, "TERM")
    state = await runtime.state(cid)
    assert state is not None
    assert state.status == "running"
    await runtime.kill(cid, signal.SIGKILL)
    # 128 + 9, not 128 + 15: the TERM was ignored.
    assert await harness.exit_code(cid) == 137

    await runtime.delete(cid)
    assert await runtime.state(cid) is None
    await runtime.delete(cid)  # idempotent
    with pytest.raises(NotInRuntime):
        await runtime.kill(cid, "KILL")


@pytest_twisted.ensureDeferred
async def test_exit_command_runs_after_exit(harness: Harness) -> None:
    """conmon runs the exit command with its arguments after the container exits."""
    out = harness.base / "cmd-out"
    out.mkdir()
    script = harness.base / "exit-command"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$@" "PATH=$PATH" > "$1/argv"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    config = harness.config("true", exit_command=[str(script), str(out), "cleanup", "two words"])
    seen: Deferred[str] = Deferred()

    def written(name: str) -> None:
        if not seen.called:
            seen.callback(name)

    watcher = ExitWatcher(reactor, str(out), written)
    watcher.start()
    try:
        await harness.run(config)
        assert await wait(seen) == "argv"
    finally:
        watcher.stop()
    assert (out / "argv").read_text().splitlines() == [
        str(out),
        "cleanup",
        "two words",
        f"PATH={DEFAULT_PATH}",
    ]
    assert await harness.exit_code(config.container_id) == 0


@pytest_twisted.ensureDeferred
async def test_container_outlives_its_launcher(harness: Harness) -> None:
    """conmon is reparented away from us and still records the exit of a forgotten container."""
    config = harness.config("sh", "-c", "sleep 1; exit 3")
    created = await harness.run(config)
    status = Path(f"/proc/{created.conmon_pid}/status").read_text()
    ppid = int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])
    assert ppid != os.getpid()
    # Nothing on our side refers to the container any more: no sockets, no
    # child process.  Only conmon can write the exit file.
    del created
    state = await harness.runtime.state(config.container_id)
    assert state is not None
    assert state.status == "running"
    assert await harness.exit_code(config.container_id) == 3


@pytest_twisted.ensureDeferred
async def test_bad_bundle_fails_with_runc_message(harness: Harness) -> None:
    """runc create's error comes back as RuntimeFailure, without waiting for the timeout."""
    config = harness.config("/no/such/executable")
    with pytest.raises(RuntimeFailure) as info:
        await create_container(reactor, config, timeout=WAIT)
    assert "/no/such/executable" in info.value.message
    assert '{"level"' not in info.value.message
    assert read_exit_file(config.exit_dir, config.container_id) is None


@pytest_twisted.ensureDeferred
async def test_conmon_death_is_reported_with_its_log(harness: Harness) -> None:
    """A conmon that dies before forking is reported with its own output, not a hang."""
    fake = harness.base / "dying-conmon"
    fake.write_text("#!/bin/sh\necho 'conmon: cannot go on' >&2\nexit 1\n")
    fake.chmod(0o755)
    config = attrs.evolve(harness.config("true"), conmon=str(fake))
    with pytest.raises(RuntimeFailure, match=r"exited with status 1.*conmon: cannot go on"):
        await create_container(reactor, config, timeout=WAIT)


@pytest_twisted.ensureDeferred
async def test_launch_timeout_kills_the_launcher(harness: Harness) -> None:
    """A conmon that never answers is killed at the timeout and reported as such."""
    fake = harness.base / "silent-conmon"
    pid_file = harness.base / "silent.pid"
    fake.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    fake.chmod(0o755)
    config = attrs.evolve(harness.config("true"), conmon=str(fake))
    with pytest.raises(RuntimeFailure, match=r"not created within 0\.5s"):
        await create_container(reactor, config, timeout=0.5)
    pid = int(pid_file.read_text())
    # Killed and reaped before the error came back: the pid is gone (or reused).
    with contextlib.suppress(FileNotFoundError):
        assert "sleep" not in Path(f"/proc/{pid}/cmdline").read_text()


@pytest_twisted.ensureDeferred
async def test_exit_watcher_reports_old_and_new_files(tmp_path: Path) -> None:
    """Files present at start() and files written later are reported; temp files are not."""
    (tmp_path / "before").write_text("0")
    reported: list[str] = []
    later: Deferred[None] = Deferred()

    def exited(name: str) -> None:
        reported.append(name)
        if name == "after":
            later.callback(None)

    watcher = ExitWatcher(reactor, str(tmp_path), exited)
    watcher.start()
    try:
        assert reported == ["before"]
        # What glib's g_file_set_contents (conmon) does: write a temp file, rename.
        (tmp_path / "after.Ab12Cd").write_text("1")
        (tmp_path / "after.Ab12Cd").rename(tmp_path / "after")
        await wait(later)
    finally:
        watcher.stop()
    assert reported == ["before", "after"]


def test_ctl_without_conmon_is_a_clear_error(tmp_path: Path) -> None:
    """Writing to a ctl FIFO nobody reads (conmon gone) raises instead of blocking."""
    os.mkfifo(tmp_path / "ctl")
    with pytest.raises(RuntimeFailure, match="conmon is not running"):
        resize(str(tmp_path), 40, 100)
    with pytest.raises(RuntimeFailure, match="conmon is not running"):
        reopen_log(str(tmp_path / "missing"))
