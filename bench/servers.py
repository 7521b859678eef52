"""The servers benchmarks compare: podapi, and ``podman system service`` when installed.

Both get private, temporary storage.  Podman is configured through its own
``CONTAINERS_CONF`` (runc, cgroupfs, no default ulimits, as these machines
need) so nothing under /etc is touched.
"""

import compileall
import functools
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from attrs import frozen

PODMAN_CONF = """\
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
"""


def wait_for_answer(path: str, target: str, deadline: float) -> None:
    """Poll until the socket answers ``GET target`` with 200 (benchmarks only)."""
    request = f"GET {target} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path)
                sock.sendall(request)
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"no answer to {target} on {path}")


@frozen
class ColdStart:
    """Median seconds from exec to the first 200 on ``/_ping`` and on a container list."""

    ping: float
    api: float


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Server:
    """A server process under test."""

    name = "server"
    #: A request that needs the whole engine (the first real request after a ping);
    #: None: the server has only ``/_ping``.
    api_target: str | None = "/v1.44/containers/json?all=1"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sock = str(base / "api.sock")
        self.proc: subprocess.Popen[bytes] | None = None
        self.cold_start = 0.0
        self.cold_api = math.nan

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> "Server":
        self.base.mkdir(parents=True, exist_ok=True)
        log = open(self.base / "server.log", "wb")  # noqa: SIM115 (lives with the process)
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv(), stdout=log, stderr=subprocess.STDOUT, env=self.env(), cwd=self.base
        )
        try:
            wait_for_answer(self.sock, "/_ping", t0 + 60)
            self.cold_start = time.monotonic() - t0
            if self.api_target is not None:
                wait_for_answer(self.sock, self.api_target, t0 + 60)
                self.cold_api = time.monotonic() - t0
        except RuntimeError:
            self.stop()
            raise
        return self

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cold_starts(self, starts: int) -> ColdStart:
        """Start ``starts`` times (stopping in between; the last one stays up, fully
        started: it answered :attr:`api_target`)."""
        pings, apis = [], []
        for n in range(starts):
            self.start()
            pings.append(self.cold_start)
            apis.append(self.cold_api)
            if n < starts - 1:
                self.stop()
        return ColdStart(statistics.median(pings), statistics.median(apis))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        unmount_below(self.base)


def unmount_below(base: Path) -> None:
    """Unmount what a server left mounted under its own directory (podman's storage)."""
    prefix = str(base.resolve()) + "/"
    points = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", point], check=False)


@functools.cache
def compile_checkout() -> None:
    """Bytecode for the checkout's ``podapi``, as an installed package has it (pip
    compiles at install): with ``PYTHONDONTWRITEBYTECODE`` set, as on these machines,
    every timed start would otherwise compile some 200 modules again (~1.5 s)."""
    compileall.compile_dir(Path(__file__).parents[1] / "podapi", quiet=1)


class Podapi(Server):
    """``twistd -n podapi`` from this checkout's virtualenv."""

    name = "podapi"

    def start(self) -> "Server":
        compile_checkout()
        return super().start()

    def argv(self) -> list[str]:
        twistd = str(Path(sys.executable).with_name("twistd"))
        return [
            twistd,
            "-n",
            "--pidfile=",
            "podapi",
            "--root",
            str(self.base / "root"),
            "--runroot",
            str(self.base / "run"),
            f"unix://{self.sock}",
            "-t",
            "0",
            # Its own default network: podman's may be up on the same host (and
            # netavark names firewall chains after networks).
            "--default-network",
            "podapi",
            "--default-bridge",
            "podapib0",
            "--default-subnet",
            "10.77.0.0/24",
            "--subnet-pool",
            "10.78.0.0/16",
            "--bridge-prefix",
            "podapib",
        ]


class Podman(Server):
    """``podman system service`` with private storage and configuration."""

    name = "podman"

    def argv(self) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.base / "root"),
            "--runroot",
            str(self.base / "run"),
            "--tmpdir",
            str(self.base / "tmp"),
            "system",
            "service",
            "-t",
            "0",
            f"unix://{self.sock}",
        ]

    def env(self) -> dict[str, str]:
        conf = self.base / "containers.conf"
        conf.write_text(PODMAN_CONF)
        return {**os.environ, "CONTAINERS_CONF": str(conf)}


class Floor(Server):
    """``bench/floor.py``: Twisted and Klein alone answering ``/_ping`` (and exiting)."""

    name = "floor"
    api_target = None

    def argv(self) -> list[str]:
        return [sys.executable, str(Path(__file__).with_name("floor.py")), self.sock]


def servers(base: Path, with_podman: bool = True) -> list[Server]:
    """podapi, plus podman when it is installed and wanted."""
    found: list[Server] = [Podapi(base / "podapi")]
    if with_podman and shutil.which("podman"):
        found.append(Podman(base / "podman"))
    return found
