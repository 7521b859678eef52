"""Pod lifecycle latency, podapi against ``podman system service``, side by side.

    .venv/bin/python -m bench.pods [--runs 20] [--no-podman]

Per server: the p50/p90 of create + start + stop + remove of an empty pod (its
infra container only, default network) over the Libpod API, after a warm-up
cycle that also makes the pause image.  Target (issue 13): podapi's p50 at
most podman 4.3.1's.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.containers import expect
from bench.http_client import Connection
from bench.servers import Server, servers

API = "/v4.3.1/libpod"
STEPS = ("create", "start", "stop", "rm")


async def cycle(conn: Connection, n: int) -> dict[str, float]:
    """One create + start + stop + remove of an empty pod; milliseconds per step."""
    laps: dict[str, float] = {}
    t0 = time.perf_counter()
    body = json.dumps({"name": f"bench-pod-{n}"}).encode()
    created = await expect(conn, "POST", f"{API}/pods/create", 201, body)
    pod = json.loads(created)["Id"]
    laps["create"] = time.perf_counter()
    await expect(conn, "POST", f"{API}/pods/{pod}/start", 200)
    laps["start"] = time.perf_counter()
    await expect(conn, "POST", f"{API}/pods/{pod}/stop", 200)
    laps["stop"] = time.perf_counter()
    await expect(conn, "DELETE", f"{API}/pods/{pod}", 200)
    laps["rm"] = time.perf_counter()
    found, last = {}, t0
    for step in STEPS:
        found[step], last = (laps[step] - last) * 1000, laps[step]
    found["total"] = (last - t0) * 1000
    return found


async def cycles(sock: str, runs: int) -> list[dict[str, float]]:
    conn = await Connection.open(sock)
    try:
        await cycle(conn, 0)  # warm-up: makes the pause image
        return [await cycle(conn, n) for n in range(1, runs + 1)]
    finally:
        conn.close()


def measure(server: Server, runs: int) -> dict[str, float]:
    laps = asyncio.run(cycles(server.sock, runs))
    totals = sorted(lap["total"] for lap in laps)
    found = {"p50": statistics.median(totals), "p90": totals[int(len(totals) * 0.9)]}
    for step in STEPS:
        found[step] = statistics.median(lap[step] for lap in laps)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="pod cycles (p50 over them)")
    parser.add_argument("--no-podman", action="store_true", help="skip the podman reference")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="podapi-bench-pod-", dir="/var/tmp") as tmp:
        for server in servers(Path(tmp), with_podman=not args.no_podman):
            server.start()
            try:
                results[server.name] = measure(server, args.runs)
            finally:
                server.stop()
    print(f"== pod create+start+stop+rm of an empty pod ({args.runs} runs)")
    steps = " ".join(f"{s + ' p50':>10}" for s in STEPS)
    print(f"   {'server':8} {'p50 ms':>8} {'p90 ms':>8} {steps}")
    for name, r in results.items():
        per_step = " ".join(f"{r[s]:10.1f}" for s in STEPS)
        print(f"   {name:8} {r['p50']:8.1f} {r['p90']:8.1f} {per_step}")
    if {"podapi", "podman"} <= results.keys():
        ratio = results["podapi"]["p50"] / results["podman"]["p50"]
        print(f"== podapi / podman: pod cycle x{ratio:.2f} (target <= 1)")


if __name__ == "__main__":
    main()
