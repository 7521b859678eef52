"""Pod lifecycle latency, podapi against ``podman system service``, side by side.

    .venv/bin/python -m bench.pods [--runs 20] [--no-podman]

Per server: the p50/p90 of create + start + stop + remove of an empty pod (its
infra container only, default network) over the Libpod API, after a warm-up
cycle that also makes the pause image.  Target (issue 13): podapi's p50 at
most podman 4.3.1's.
"""

import argparse
import asyncio
import itertools
import json
import tempfile
from pathlib import Path

from bench.containers import expect
from bench.http_client import Connection
from bench.servers import Server, servers
from bench.timing import Laps, Stopwatch, laps

API = "/v4.3.1/libpod"
STEPS = ("create", "start", "stop", "rm")


async def cycle(conn: Connection, watch: Stopwatch, name: str) -> None:
    """One create + start + stop + remove of an empty pod, each a step of ``watch``."""
    body = json.dumps({"name": name}).encode()
    created = await expect(conn, "POST", f"{API}/pods/create", 201, body)
    pod = json.loads(created)["Id"]
    watch.split("create")
    await expect(conn, "POST", f"{API}/pods/{pod}/start", 200)
    watch.split("start")
    await expect(conn, "POST", f"{API}/pods/{pod}/stop", 200)
    watch.split("stop")
    await expect(conn, "DELETE", f"{API}/pods/{pod}", 200)
    watch.split("rm")


async def cycles(sock: str, runs: int) -> Laps:
    """``runs`` timed cycles after a warm-up one (it makes the pause image)."""
    conn = await Connection.open(sock)
    names = (f"bench-pod-{n}" for n in itertools.count())
    try:
        return await laps(lambda watch: cycle(conn, watch, next(names)), runs)
    finally:
        conn.close()


def measure(server: Server, runs: int) -> dict[str, float]:
    found = asyncio.run(cycles(server.sock, runs))
    return {"p50": found.p50, "p90": found.p90} | {s: found.step_p50(s) for s in STEPS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="pod cycles (p50 over them)")
    parser.add_argument("--no-podman", action="store_true", help="skip the podman reference")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="podapi-bench-pod-", dir="/var/tmp") as tmp:
        for server in servers(Path(tmp), with_podman=not args.no_podman):
            with server.start():
                results[server.name] = measure(server, args.runs)
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
