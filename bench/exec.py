"""Exec round trip, podapi against ``podman system service``.

    .venv/bin/python -m bench.exec [--runs 50] [--no-podman]

Per server, in a running ``sleep`` container: create an exec session of
``true`` (stdout and stderr attached), start it (the hijacked stream, read to
its end) and inspect it for the exit code, as ``docker exec`` does; p50/p90 of
that round trip after a warm-up.  Target (issue 5): p50 at most 0.5x podman's.
"""

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from bench.containers import API, IMAGE, expect
from bench.http_client import Connection
from bench.images import load_archive
from bench.servers import Server, servers
from bench.timing import Laps, laps
from tests.fixtures.images import busybox_image

EXEC_BODY = json.dumps({"Cmd": ["true"], "AttachStdout": True, "AttachStderr": True}).encode()
START_BODY = b'{"Detach":false,"Tty":false}'


async def attached_start(sock: str, exec_id: str) -> None:
    """``POST /exec/{id}/start`` with Docker's upgrade headers; read until the server closes."""
    reader, writer = await asyncio.open_unix_connection(sock)
    try:
        writer.write(
            f"POST {API}/exec/{exec_id}/start HTTP/1.1\r\nHost: d\r\n"
            "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(START_BODY)}\r\n\r\n".encode()
            + START_BODY
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith((b"HTTP/1.1 101", b"HTTP/1.1 200")):
            raise SystemExit(f"exec start: {head!r}")
        while await reader.read(65536):
            pass
    finally:
        writer.close()


async def round_trip(conn: Connection, sock: str, container: str) -> None:
    created = await expect(conn, "POST", f"{API}/containers/{container}/exec", 201, EXEC_BODY)
    exec_id = json.loads(created)["Id"]
    await attached_start(sock, exec_id)
    inspected = json.loads(await expect(conn, "GET", f"{API}/exec/{exec_id}/json", 200))
    if inspected["ExitCode"] != 0 or inspected["Running"]:
        raise SystemExit(f"exec did not end well: {inspected}")


async def measure(server: Server, runs: int) -> Laps:
    conn = await Connection.open(server.sock)
    try:
        body = json.dumps({"Image": IMAGE, "Cmd": ["sleep", "1000"]}).encode()
        container = json.loads(await expect(conn, "POST", f"{API}/containers/create", 201, body))
        cid = container["Id"]
        await expect(conn, "POST", f"{API}/containers/{cid}/start", 204)
        try:
            return await laps(lambda _: round_trip(conn, server.sock, cid), runs)
        finally:
            await expect(conn, "DELETE", f"{API}/containers/{cid}?force=1", 204)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="exec round trips")
    parser.add_argument("--no-podman", action="store_true", help="skip the podman reference")
    args = parser.parse_args()
    results: dict[str, Laps] = {}
    with tempfile.TemporaryDirectory(prefix="podapi-bench-exec-", dir="/var/tmp") as tmp:
        archive = Path(tmp) / "busybox.tar"
        archive.write_bytes(busybox_image().docker_archive([IMAGE]))
        for server in servers(Path(tmp), with_podman=not args.no_podman):
            with server.start():
                load_archive(server, archive)
                results[server.name] = asyncio.run(measure(server, args.runs))
    print(f"== exec round trip of `true`, attached ({args.runs} runs)")
    print(f"   {'server':8} {'p50 ms':>8} {'p90 ms':>8}")
    for name, found in results.items():
        print(f"   {name:8} {found.p50:8.1f} {found.p90:8.1f}")
    if {"podapi", "podman"} <= results.keys():
        ratio = results["podapi"].p50 / results["podman"].p50
        print(f"== podapi / podman: x{ratio:.2f} (target <= 0.5)")


if __name__ == "__main__":
    main()
