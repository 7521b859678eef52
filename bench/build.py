"""Image build time, podapi against ``podman system service`` (buildah).

    .venv/bin/python -m bench.build [--rounds 3] [--no-podman]

On each server: load the busybox test image, then build a 5-step Dockerfile
(FROM, ENV, COPY, RUN, CMD) through the compat ``POST /build`` twice: the
first build (nothing cached; the context is a few files plus 8 MB) and the
unchanged rebuild (every step from the cache).  Prints the median of
``--rounds`` first builds (each after removing the image and its cache) and
rebuilds, in seconds, and the podapi/podman ratios.  Target (issue 14): at
most podman's time for both.
"""

import argparse
import asyncio
import io
import json
import os
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

from bench.http_client import one_request
from bench.servers import Server, servers
from tests.fixtures.images import busybox_image

DOCKERFILE = b"""\
FROM acc-busybox
ENV GREETING=hello
COPY . /app
RUN cat /app/data/* | wc -c > /app/size && echo "$GREETING" > /app/greeting
CMD ["cat", "/app/greeting"]
"""


def context_tar() -> bytes:
    """The build context: the Dockerfile and some data to copy."""
    buffer = io.BytesIO()
    files = {"Dockerfile": DOCKERFILE}
    for index in range(8):
        files[f"data/part{index}"] = os.urandom(1 << 20)
    for index in range(200):
        files[f"src/file{index}.txt"] = f"line {index}\n".encode() * 20
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def build(server: Server, body: bytes, query: str) -> float:
    """One ``POST /build``; its wall time (fails loudly on an error line)."""
    t0 = time.monotonic()
    status, reply = await one_request(server.sock, "POST", "/v1.41/build?" + query, body)
    elapsed = time.monotonic() - t0
    lines = [json.loads(line) for line in reply.splitlines() if line.strip()]
    if status != 200 or any("error" in line for line in lines):
        raise RuntimeError(f"{server.name}: build failed: {status} {reply[-500:]!r}")
    return elapsed


async def measure(server: Server, rounds: int) -> dict[str, float]:
    archive = busybox_image().docker_archive(["acc-busybox:latest"])
    status, reply = await one_request(server.sock, "POST", "/v1.41/images/load", archive)
    if status != 200:
        raise RuntimeError(f"{server.name}: load failed: {reply!r}")
    body = context_tar()
    first, again = [], []
    for _ in range(rounds):
        first.append(await build(server, body, "t=bench-built&nocache=1"))
        again.append(await build(server, body, "t=bench-built"))
    return {"first": statistics.median(first), "cached": statistics.median(again)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="builds of each kind (median)")
    parser.add_argument("--no-podman", action="store_true", help="skip the podman reference")
    args = parser.parse_args()
    table: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="podapi-bench-") as tmp:
        for server in servers(Path(tmp), with_podman=not args.no_podman):
            with server.start():
                table[server.name] = asyncio.run(measure(server, args.rounds))
    print(f"{'server':<8} {'first build s':>14} {'cached rebuild s':>17}")
    for name, row in table.items():
        print(f"{name:<8} {row['first']:>14.3f} {row['cached']:>17.3f}")
    if "podman" in table and "podapi" in table:
        ours, theirs = table["podapi"], table["podman"]
        print(
            f"ratio podapi/podman: first {ours['first'] / theirs['first']:.2f}, "
            f"cached {ours['cached'] / theirs['cached']:.2f}"
        )


if __name__ == "__main__":
    main()
