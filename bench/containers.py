"""Container lifecycle latency and listing, podapi against ``podman system service``.

    .venv/bin/python -m bench.containers [--runs 30] [--listed 1000] [--no-podman]

Per server: the p50/p90 of create + start + wait + remove of ``true`` (network
``none``, compat API) over ``--runs`` cycles after a warm-up, the same cycle's
p50 with ``seccomp=unconfined`` (no filter for runc to compile: the engine's own
cost, next to a bare ``runc run`` without seccomp) and on the default bridge
network (netavark setup and teardown included), then
``GET /containers/json?all=1`` latency with ``--listed`` created containers.
Targets (issue 4): the cycle p50 at most 0.25x podman's; the listing at most
podman's latency. Issue 6: what the network adds to a cycle is no more than
what it adds for podman.
"""

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from attrs import frozen

from bench.http_client import Connection, sequential
from bench.images import load_archive
from bench.servers import Server, servers
from bench.timing import Laps, Stopwatch, laps
from tests.fixtures.images import busybox_image

IMAGE = "bench-busybox:latest"
API = "/v1.41"


def create_body(network_mode: str = "none", *, unconfined: bool = False) -> bytes:
    """The create request for ``true``; ``unconfined``: without the default seccomp
    filter (``--security-opt seccomp=unconfined``)."""
    host_config: dict[str, object] = {"NetworkMode": network_mode}
    if unconfined:
        host_config["SecurityOpt"] = ["seccomp=unconfined"]
    return json.dumps({"Image": IMAGE, "Cmd": ["true"], "HostConfig": host_config}).encode()


async def expect(
    conn: Connection, method: str, target: str, status: int, body: bytes = b""
) -> bytes:
    got, reply = await conn.request(method, target, body)
    if got != status:
        raise SystemExit(f"{method} {target}: HTTP {got}: {reply[-300:]!r}")
    return reply


async def cycle(conn: Connection, body: bytes) -> None:
    """One create + start + wait + remove."""
    created = await expect(conn, "POST", f"{API}/containers/create", 201, body)
    cid = json.loads(created)["Id"]
    await expect(conn, "POST", f"{API}/containers/{cid}/start", 204)
    waited = await expect(conn, "POST", f"{API}/containers/{cid}/wait", 200)
    if json.loads(waited)["StatusCode"] != 0:
        raise SystemExit(f"container exited with {waited!r}")
    await expect(conn, "DELETE", f"{API}/containers/{cid}", 204)


async def cycles(sock: str, runs: int, network_mode: str, *, unconfined: bool = False) -> Laps:
    """``runs`` timed cycles of ``true`` after a warm-up one (``unconfined``: without
    seccomp)."""
    conn = await Connection.open(sock)
    body = create_body(network_mode, unconfined=unconfined)
    try:
        return await laps(lambda _: cycle(conn, body), runs)
    finally:
        conn.close()


async def create_latency(sock: str, runs: int) -> Laps:
    """``runs`` timed creates, each removed again (untimed) so the count stays put."""
    conn = await Connection.open(sock)

    async def create(watch: Stopwatch) -> None:
        reply = await expect(conn, "POST", f"{API}/containers/create", 201, create_body())
        watch.split("create")
        await expect(conn, "DELETE", f"{API}/containers/{json.loads(reply)['Id']}", 204)

    try:
        return await laps(create, runs)
    finally:
        conn.close()


async def create_many(sock: str, count: int, clients: int = 8) -> list[str]:
    """``count`` created (never started) containers, made over ``clients`` connections."""
    ids: list[str] = []

    async def worker(share: int) -> None:
        conn = await Connection.open(sock)
        try:
            for _ in range(share):
                reply = await expect(conn, "POST", f"{API}/containers/create", 201, create_body())
                ids.append(json.loads(reply)["Id"])
        finally:
            conn.close()

    shares = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]
    await asyncio.gather(*(worker(share) for share in shares))
    return ids


async def remove_all(sock: str, ids: list[str], clients: int = 8) -> None:
    async def worker(part: list[str]) -> None:
        conn = await Connection.open(sock)
        try:
            for cid in part:
                await expect(conn, "DELETE", f"{API}/containers/{cid}?force=1", 204)
        finally:
            conn.close()

    await asyncio.gather(*(worker(ids[i::clients]) for i in range(clients)))


def list_latency(server: Server) -> float:
    """``GET /containers/json?all=1`` p50 in milliseconds (at least 20 requests)."""
    return asyncio.run(sequential(server.sock, f"{API}/containers/json?all=1", 50, 20)).p50


@frozen
class AtScale:
    """Create and list p50 (milliseconds) with some number of containers existing."""

    create_p50: float
    list_p50: float


def at_scale(server: Server, counts: Sequence[int], runs: int = 20) -> dict[int, AtScale]:
    """Create and list latency with each of ``counts`` (ascending) containers existing;
    the created containers are removed at the end."""
    ids: list[str] = []
    found = {}
    try:
        for count in counts:
            ids += asyncio.run(create_many(server.sock, count - len(ids)))
            creates = asyncio.run(create_latency(server.sock, runs))
            found[count] = AtScale(creates.step_p50("create"), list_latency(server))
    finally:
        asyncio.run(remove_all(server.sock, ids))
    return found


def measure(server: Server, archive: Path, runs: int, listed: int) -> dict[str, float]:
    load_archive(server, archive)
    plain = asyncio.run(cycles(server.sock, runs, "none"))
    unconfined = asyncio.run(cycles(server.sock, runs, "none", unconfined=True))
    bridged = asyncio.run(cycles(server.sock, runs, "bridge"))
    t0 = time.perf_counter()
    ids = asyncio.run(create_many(server.sock, listed))
    create_rate = listed / (time.perf_counter() - t0)
    listing = list_latency(server)
    asyncio.run(remove_all(server.sock, ids))
    return {
        "cycle_p50": plain.p50,
        "cycle_p90": plain.p90,
        "unconfined_p50": unconfined.p50,
        "bridge_p50": bridged.p50,
        "creates_per_s": create_rate,
        "list_p50": listing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="lifecycle cycles (p50 over them)")
    parser.add_argument("--listed", type=int, default=1000, help="containers for the listing")
    parser.add_argument("--no-podman", action="store_true", help="skip the podman reference")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="podapi-bench-ctr-", dir="/var/tmp") as tmp:
        archive = Path(tmp) / "busybox.tar"
        archive.write_bytes(busybox_image().docker_archive([IMAGE]))
        for server in servers(Path(tmp), with_podman=not args.no_podman):
            with server.start():
                results[server.name] = measure(server, archive, args.runs, args.listed)
    print(f"== create+start+wait+remove of `true` ({args.runs} runs), list of {args.listed}")
    print(
        f"   {'server':8} {'p50 ms':>8} {'p90 ms':>8} {'unconfined':>10} {'bridge p50':>10} "
        f"{'network +ms':>11} {'creates/s':>10} {'list p50 ms':>12}"
    )
    for name, r in results.items():
        print(
            f"   {name:8} {r['cycle_p50']:8.1f} {r['cycle_p90']:8.1f} {r['unconfined_p50']:10.1f} "
            f"{r['bridge_p50']:10.1f} "
            f"{r['bridge_p50'] - r['cycle_p50']:11.1f} "
            f"{r['creates_per_s']:10.1f} {r['list_p50']:12.1f}"
        )
    if {"podapi", "podman"} <= results.keys():
        a, b = results["podapi"], results["podman"]
        print(
            f"== podapi / podman: cycle x{a['cycle_p50'] / b['cycle_p50']:.2f} (target <= 0.25)"
            f"  list x{a['list_p50'] / b['list_p50']:.2f} (target <= 1)"
        )
        cost_a, cost_b = (r["bridge_p50"] - r["cycle_p50"] for r in (a, b))
        print(f"== network setup adds {cost_a:.1f} ms (podman: {cost_b:.1f} ms; target <= podman)")


if __name__ == "__main__":
    main()
