"""Image save, load and pull throughput, podapi against ``podman system service``.

    .venv/bin/python -m bench.images [--size-mb 1024] [--no-podman]

Builds a docker-archive of about ``--size-mb`` (busybox plus big random
files), then on each server: load it (``POST /images/load``), save it
(``GET /images/{name}/get``), and pull it from a loopback registry (after
removing it).  Prints MB/s and the server's RSS growth during each step.
Targets (issue 3): save >= 3x podman, load >= podman, RSS growth < 50 MB,
pull >= podman.
"""

import argparse
import asyncio
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from attrs import frozen

from bench.http_client import Connection, one_request
from bench.servers import Server, rss_kib, servers
from tests.fixtures.images import BuiltImage, busybox_layer, layer_tar
from tests.fixtures.registry import Registry

T = TypeVar("T")
NAME = "bench-big:latest"
CHUNK = 1024 * 1024


class PeakRSS:
    """Samples a process's RSS every 10 ms in a thread while a step runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base = rss_kib(pid)
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 1024


def build_archive(path: Path, size_mb: int) -> None:
    """busybox + files of random bytes, written as a docker-archive."""
    files = {f"data/blob{i}": os.urandom(64 << 20) for i in range(max(1, size_mb // 64))}
    image = BuiltImage(layers=[busybox_layer(), layer_tar(files)], cmd=["sh"])
    path.write_bytes(image.docker_archive([NAME]))


async def upload(sock: str, target: str, path: Path, method: str = "POST") -> tuple[int, bytes]:
    """Send a file as the body, streamed."""
    size = path.stat().st_size
    conn = await Connection.open(sock)
    try:
        conn.writer.write(
            f"{method} {target} HTTP/1.1\r\nHost: d\r\nContent-Length: {size}\r\n"
            "Content-Type: application/x-tar\r\n\r\n".encode()
        )
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                conn.writer.write(chunk)
                await conn.writer.drain()
        return await conn.read_response(method)
    finally:
        conn.close()


async def download(sock: str, target: str) -> int:
    """GET a body and count its bytes without keeping them."""
    reader, writer = await asyncio.open_unix_connection(sock, limit=1 << 22)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        total = 0
        while chunk := await reader.read(CHUNK):
            total += len(chunk)
        return total
    finally:
        writer.close()


def timed(server: Server, work: Coroutine[Any, Any, T]) -> tuple[float, float, T]:
    """Run ``work``; return seconds taken, the server's RSS growth (MB) and the result."""
    with PeakRSS(server.pid) as rss:
        t0 = time.perf_counter()
        result = asyncio.run(work)
        elapsed = time.perf_counter() - t0
    return elapsed, rss.growth_mb, result


def check(server: Server, step: str, reply: tuple[int, bytes]) -> None:
    """Refuse to report a figure for a step that failed."""
    status, body = reply
    if status != 200 or b"errorDetail" in body or b'"error"' in body:
        raise SystemExit(f"{server.name}: {step} failed: HTTP {status}: {body[-500:]!r}")


def load_archive(server: Server, archive: Path) -> None:
    """Load a docker-archive into ``server`` (``POST /images/load``), failing loudly."""
    check(server, "load", asyncio.run(upload(server.sock, "/v1.41/images/load", archive)))


@frozen
class LoadSave:
    """One load and one save of an archive: MB/s, and the server's RSS growth (MB)."""

    load: float
    load_rss: float
    save: float
    save_rss: float


def load_and_save(server: Server, archive: Path) -> LoadSave:
    """Load ``archive`` (its image is ``NAME``), then save that image back out."""
    size_mb = archive.stat().st_size / 1e6
    load_s, load_rss, reply = timed(server, upload(server.sock, "/v1.41/images/load", archive))
    check(server, "load", reply)
    save_s, save_rss, saved = timed(server, download(server.sock, f"/v1.41/images/{NAME}/get"))
    return LoadSave(size_mb / load_s, load_rss, saved / 1e6 / save_s, save_rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--no-podman", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="podapi-bench-img-", dir="/var/tmp") as tmp:
        base = Path(tmp)
        archive = base / "big.tar"
        build_archive(archive, args.size_mb)
        size_mb = archive.stat().st_size / 1e6
        registry = Registry(base / "registry").start()
        try:
            remote = f"{registry.host}/bench/big:1"
            subprocess.run(
                [
                    "skopeo",
                    "copy",
                    "--dest-tls-verify=false",
                    f"docker-archive:{archive}",
                    f"docker://{remote}",
                ],
                check=True,
                capture_output=True,
            )
            conf = base / "registries.conf"
            conf.write_text(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
            os.environ["CONTAINERS_REGISTRIES_CONF"] = str(conf)  # podman: plain HTTP there
            for server in servers(base, with_podman=not args.no_podman):
                with server.start():
                    done = load_and_save(server, archive)
                    asyncio.run(one_request(server.sock, "DELETE", f"/v1.41/images/{NAME}"))
                    pull_s, pull_rss, _ = timed(
                        server,
                        one_request(
                            server.sock, "POST", f"/v1.41/images/create?fromImage={remote}"
                        ),
                    )
                    rows.append(
                        (
                            server.name,
                            done.load,
                            done.load_rss,
                            done.save,
                            done.save_rss,
                            size_mb / pull_s,
                            pull_rss,
                        )
                    )
        finally:
            registry.stop()
    print(f"== image of {size_mb:.0f} MB (docker-archive)")
    print(
        f"   {'server':8} {'load MB/s':>10} {'RSS+MB':>7} {'save MB/s':>10} {'RSS+MB':>7} "
        f"{'pull MB/s':>10} {'RSS+MB':>7}"
    )
    for name, load, lr, save, sr, pull, pr in rows:
        print(f"   {name:8} {load:10.0f} {lr:7.1f} {save:10.0f} {sr:7.1f} {pull:10.0f} {pr:7.1f}")
    if len(rows) == 2:
        a, b = rows
        print(
            f"== podapi / podman: load x{a[1] / b[1]:.2f}  save x{a[3] / b[3]:.2f}  "
            f"pull x{a[5] / b[5]:.2f}"
        )


if __name__ == "__main__":
    main()
