"""Generated specs run under the real runc: caps, seccomp, rlimits, cgroups, mounts, init."""

import json
import os
import resource
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from podapi.oci import capabilities, host, seccomp
from podapi.oci.spec import Resources, SpecInputs, generate

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("runc") is None, reason="runc not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="runc needs root here"),
    pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox not installed"),
]

RUNC = shutil.which("runc") or "runc"
CATATONIT = shutil.which("catatonit")
SEPARATOR = "@@"
MEMORY_LIMIT = 64 * 1024 * 1024


def _rootfs(path: Path) -> Path:
    """A busybox root filesystem (as ``podman create`` lays one out)."""
    bin_dir = path / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy2("/bin/busybox", bin_dir / "busybox")
    applets = subprocess.run(
        ["/bin/busybox", "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (bin_dir / applet).symlink_to("busybox")
    for name in ("proc", "sys", "dev", "tmp", "etc", "root", "run"):
        (path / name).mkdir(exist_ok=True)
    (path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (path / "etc" / "group").write_text("root:x:0:\n")
    return path


def _cgroup_dirs(relative: str) -> list[Path]:
    """Where a relative cgroupsPath lands in every hierarchy (it nests under our own cgroup)."""
    mounts: list[tuple[str, set[str], str]] = []  # (fs type, super options, mount point)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if rfields and rfields[0] in ("cgroup", "cgroup2") and fields[3] == "/":
                mounts.append((rfields[0], set(rfields[2].split(",")), fields[4]))
    found = []
    with open("/proc/self/cgroup", encoding="utf-8") as f:
        for line in f:
            _, controllers, own = line.rstrip("\n").split(":", 2)
            wanted = set(controllers.split(",")) if controllers else set()
            for fs_type, options, point in mounts:
                v2 = not controllers
                if (fs_type == "cgroup2") == v2 and wanted <= options:
                    found.append(Path(point + own.rstrip("/")) / relative)
                    break
    return found


def _remove_cgroups(relative: str) -> None:
    """rmdir the leaf and its parents (deepest first) in every hierarchy; parents may be shared."""
    depth = len(Path(relative).parts)
    for leaf in _cgroup_dirs(relative):
        for directory in [leaf, *list(leaf.parents)[: depth - 1]]:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                # Still in use by a concurrent run (a shared parent): not ours to remove.
                break


@pytest.fixture
def bundle(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A bundle directory with a busybox rootfs and a unique relative cgroupsPath."""
    directory = tmp_path / "bundle"
    _rootfs(directory / "rootfs")
    cgroups_path = f"podapi-test/{uuid.uuid4().hex}"
    yield directory, cgroups_path
    _remove_cgroups(cgroups_path)
    assert not any(d.exists() for d in _cgroup_dirs(cgroups_path))


def _run(tmp_path: Path, directory: Path, inputs: SpecInputs) -> str:
    """``runc run`` the spec in the foreground; returns stdout; always ``runc delete --force``."""
    (directory / "config.json").write_text(json.dumps(generate(inputs)))
    root = str(tmp_path / "runc")
    container_id = "podapi-test-" + uuid.uuid4().hex[:12]
    try:
        done = subprocess.run(
            [RUNC, "--root", root, "run", "--bundle", str(directory), container_id],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    finally:
        subprocess.run(
            [RUNC, "--root", root, "delete", "--force", container_id],
            capture_output=True,
            timeout=20,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [RUNC, "--root", root, "list", "-q"], capture_output=True, text=True, check=True
    )
    assert listed.stdout.strip() == ""
    return done.stdout


def _status(text: str) -> dict[str, str]:
    fields = (line.partition(":") for line in text.splitlines())
    return {key: value.strip() for key, _, value in fields}


def _limit_value(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def _nofile_line(limits: str) -> list[str]:
    line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    return line.split()[3:5]


def test_default_container_under_runc(tmp_path: Path, bundle: tuple[Path, str]) -> None:
    """Default caps, converted seccomp, NoNewPrivs, our NOFILE, a memory limit, hostname,
    env, cwd and umask all reach a container started by runc."""
    directory, cgroups_path = bundle
    profile = seccomp.load_default()
    if profile is None:
        pytest.skip("no seccomp profile installed")
    caps = capabilities.effective([], [], False)
    script = f"; echo {SEPARATOR}; ".join(
        [
            "cat /proc/self/status",
            "cat /proc/self/limits",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
            "cat /sys/fs/cgroup/pids/pids.max",
            "cat /proc/sys/kernel/hostname",
            "pwd",
            'echo "$GREETING"',
            "umask",
            "id -u",
            "grep -c . /proc/net/dev",
        ]
    )
    inputs = SpecInputs(
        rootfs=str(directory / "rootfs"),
        args=["sh", "-c", script],
        env=["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello podapi"],
        cwd="/tmp",
        hostname="0123456789ab",
        terminal=False,
        capabilities=caps,
        no_new_privileges=True,
        cgroups_path=cgroups_path,
        resources=Resources(memory=MEMORY_LIMIT, pids_limit=100),
        seccomp=seccomp.convert(
            profile, caps, go_arch=host.go_arch(), kernel=host.kernel_release()
        ),
    )
    parts = [p.strip() for p in _run(tmp_path, directory, inputs).split(SEPARATOR)]
    status, limits, memory, pids, hostname, cwd, greeting, umask, uid, net_lines = parts

    fields = _status(status)
    expected_caps = capabilities.mask(capabilities.DEFAULT_CAPABILITIES)
    assert expected_caps == 0x800405FB
    assert int(fields["CapEff"], 16) == expected_caps
    assert int(fields["CapPrm"], 16) == expected_caps
    assert int(fields["CapBnd"], 16) == expected_caps
    assert int(fields["CapInh"], 16) == 0
    assert int(fields["CapAmb"], 16) == 0
    assert fields["Seccomp"] == "2"
    assert fields["NoNewPrivs"] == "1"

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert _nofile_line(limits) == [_limit_value(soft), _limit_value(hard)]

    assert int(memory) == MEMORY_LIMIT
    assert pids == "100"
    assert hostname == "0123456789ab"
    assert cwd == "/tmp"
    assert greeting == "hello podapi"
    assert umask == "0022"
    assert uid == "0"
    # A new, empty network namespace: only the header lines and lo.
    assert int(net_lines) == 3


@pytest.mark.skipif(CATATONIT is None, reason="catatonit not installed")
def test_privileged_init_readonly_under_runc(tmp_path: Path, bundle: tuple[Path, str]) -> None:
    """Privileged gets our whole bounding set and no seccomp; --init runs as PID 1;
    a read-only rootfs refuses writes; NoNewPrivs stays off unless asked."""
    directory, cgroups_path = bundle
    assert CATATONIT is not None
    script = f"; echo {SEPARATOR}; ".join(
        [
            "cat /proc/self/status",
            # Only the head: the rest of PID 1's argv is this script, separators and all.
            "tr '\\0' ' ' < /proc/1/cmdline | cut -d' ' -f1-3",
            "touch /written 2>/dev/null && echo writable || echo read-only",
            "touch /dev/shm/ok && echo shm-writable",
        ]
    )
    inputs = SpecInputs(
        rootfs=str(directory / "rootfs"),
        args=["sh", "-c", script],
        env=["PATH=/bin"],
        capabilities=capabilities.effective([], [], True),
        privileged=True,
        readonly_rootfs=True,
        init_path=CATATONIT,
        cgroups_path=cgroups_path,
    )
    status, pid1, written, shm = (
        p.strip() for p in _run(tmp_path, directory, inputs).split(SEPARATOR)
    )
    fields = _status(status)
    assert int(fields["CapEff"], 16) == capabilities.mask(capabilities.bounding_set())
    assert fields["Seccomp"] == "0"
    assert fields["NoNewPrivs"] == "0"
    assert pid1 == "/run/podman-init -- sh"
    assert written == "read-only"
    assert shm == "shm-writable"
    assert not (directory / "rootfs" / "written").exists()
