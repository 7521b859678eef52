"""``docker cp`` throughput, podapi against ``podman system service``.

    .venv/bin/python -m bench.archive [--size-mb 500] [--runs 5] [--no-podman]

Builds a tar of a directory of about ``--size-mb`` (thousands of small files,
hundreds of medium ones, a few big ones, random bytes), then on each server:
loads busybox, runs a container, ``PUT``s the tar into its ``/tmp`` (``docker
cp`` in) and ``GET``s ``/tmp/tree`` back out (``docker cp`` out) ``--runs``
times.  Prints MB/s and the server's RSS growth for each step (copy out: the
median), and the server's CPU time per copy out.  Targets: copy-out
throughput >= podman's, RSS growth < 50 MB.
"""

import argparse
import asyncio
import io
import json
import os
import random
import statistics
import tarfile
import tempfile
from pathlib import Path

from attrs import frozen

from bench.http_client import one_request
from bench.images import check, download, load_archive, timed, upload
from bench.servers import Server, servers
from tests.fixtures.images import busybox_image

IMAGE = "bench-busybox:latest"
API = "/v1.41"


def build_tree_tar(path: Path, size_mb: int, seed: int = 7) -> int:
    """A tar of ``tree/`` holding about ``size_mb`` MB; returns the bytes of file data.

    A fifth of the volume in 1-64 KiB files, two fifths in 256 KiB-2 MiB files,
    the rest in 16-32 MiB files, spread over nested directories and listed
    directory by directory, as ``docker cp`` sends a tree.
    """
    rng = random.Random(seed)
    target = size_mb * 1_000_000
    plan = [(0.2, 1 << 10, 64 << 10), (0.4, 256 << 10, 2 << 20), (0.4, 16 << 20, 32 << 20)]
    files: dict[str, int] = {}
    for share, low, high in plan:
        budget = int(target * share)
        while budget > 0:
            size = min(rng.randint(low, high), max(budget, low))
            count = len(files)
            files[f"tree/d{count % 37}/s{count % 5}/f{count}.bin"] = size
            budget -= size
    dirs = {name.rsplit("/", i)[0] + "/" for name in files for i in (1, 2, 3)}
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted([*dirs, *files]):
            info = tarfile.TarInfo(name)
            if name in dirs:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            info.size, info.mode = files[name], 0o644
            tar.addfile(info, io.BytesIO(os.urandom(info.size)))
    return sum(files.values())


async def run_container(sock: str) -> str:
    body = json.dumps(
        {"Image": IMAGE, "Cmd": ["sleep", "1000"], "HostConfig": {"NetworkMode": "none"}}
    ).encode()
    status, reply = await one_request(sock, "POST", f"{API}/containers/create", body)
    if status != 201:
        raise SystemExit(f"create: HTTP {status}: {reply[-300:]!r}")
    cid = json.loads(reply)["Id"]
    status, reply = await one_request(sock, "POST", f"{API}/containers/{cid}/start")
    if status != 204:
        raise SystemExit(f"start: HTTP {status}: {reply[-300:]!r}")
    return str(cid)


@frozen
class Figures:
    """One server's results: MB/s, RSS growth (MB) and server CPU seconds."""

    cp_in: float
    cp_in_rss: float
    cp_out: float
    cp_out_rss: float
    cp_out_cpu: float


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(server: Server, image: Path, tree: Path, runs: int) -> Figures:
    """Copy ``tree`` in once, then out ``runs`` times (medians; the largest RSS growth).

    Other work on a small machine moves wall-clock figures a lot; the server's
    CPU time per copy is the steadier comparison.
    """
    size_mb = tree.stat().st_size / 1e6
    load_archive(server, image)
    cid = asyncio.run(run_container(server.sock))
    try:
        put_s, put_rss, reply = timed(
            server,
            upload(server.sock, f"{API}/containers/{cid}/archive?path=/tmp", tree, method="PUT"),
        )
        check(server, "put", reply)
        seconds, growth, cpu = [], [], []
        for _ in range(runs):
            cpu_before = cpu_seconds(server.pid)
            get_s, get_rss, got = timed(
                server, download(server.sock, f"{API}/containers/{cid}/archive?path=/tmp/tree")
            )
            cpu.append(cpu_seconds(server.pid) - cpu_before)
            if got < tree.stat().st_size * 0.99:
                raise SystemExit(f"{server.name}: the archive came back short: {got} bytes")
            seconds.append(get_s)
            growth.append(get_rss)
        return Figures(
            cp_in=size_mb / put_s,
            cp_in_rss=put_rss,
            cp_out=size_mb / statistics.median(seconds),
            cp_out_rss=max(growth),
            cp_out_cpu=statistics.median(cpu),
        )
    finally:
        asyncio.run(one_request(server.sock, "DELETE", f"{API}/containers/{cid}?force=1"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5, help="copies out per server")
    parser.add_argument("--no-podman", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, Figures]] = []
    with tempfile.TemporaryDirectory(prefix="podapi-bench-cp-", dir="/var/tmp") as tmp:
        base = Path(tmp)
        image = base / "busybox.tar"
        image.write_bytes(busybox_image().docker_archive([IMAGE]))
        tree = base / "tree.tar"
        data = build_tree_tar(tree, args.size_mb)
        size_mb = tree.stat().st_size / 1e6
        with tarfile.open(tree) as tar:
            files = sum(1 for m in tar if m.isfile())
        for server in servers(base, with_podman=not args.no_podman):
            with server.start():
                rows.append((server.name, measure(server, image, tree, args.runs)))
    print(f"== directory of {files} files, {data / 1e6:.0f} MB of data ({size_mb:.0f} MB tar)")
    print(
        f"   {'server':8} {'cp in MB/s':>11} {'RSS+MB':>7} {'cp out MB/s':>12} {'RSS+MB':>7} "
        f"{'CPU s':>6}"
    )
    for name, f in rows:
        print(
            f"   {name:8} {f.cp_in:11.0f} {f.cp_in_rss:7.1f} {f.cp_out:12.0f} "
            f"{f.cp_out_rss:7.1f} {f.cp_out_cpu:6.2f}"
        )
    if len(rows) == 2:
        a, b = rows[0][1], rows[1][1]
        print(
            f"== podapi / podman: cp in x{a.cp_in / b.cp_in:.2f}  cp out x{a.cp_out / b.cp_out:.2f}"
            f"  cp out CPU x{a.cp_out_cpu / b.cp_out_cpu:.2f}"
        )


if __name__ == "__main__":
    main()
