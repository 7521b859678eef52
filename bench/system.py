"""System endpoint latency and throughput, podapi against ``podman system service``.

    .venv/bin/python -m bench.system [--count 2000] [--seconds 5] [--clients 32] [--no-podman]

Prints, per server and endpoint: p50/p99 latency over one keep-alive
connection, sequential and concurrent throughput; then cold start to the first
``/_ping`` and idle RSS, and podapi/podman ratios.  Targets (issue 2):
``/_ping`` throughput >= podman's; ``/version`` and ``/info`` p50 < 5 ms; cold
start < 500 ms; idle RSS < 60 MB.
"""

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from bench.http_client import concurrent, sequential
from bench.servers import Server, rss_kib, servers

ENDPOINTS = ("/_ping", "/v1.44/version", "/v1.44/info", "/v1.44/containers/json")


async def endpoint(
    sock: str, target: str, count: int, seconds: float, clients: int
) -> dict[str, float]:
    """One endpoint: p50/p99 ms and requests/s over one keep-alive connection
    (``seq``), and requests/s with ``clients`` connections (``conc``)."""
    latency = await sequential(sock, target, count, seconds)
    rate = await concurrent(sock, target, clients, seconds)
    return {"p50": latency.p50, "p99": latency.p99, "seq": latency.rate, "conc": rate}


async def measure(
    server: Server, count: int, seconds: float, clients: int
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for target in ENDPOINTS:
        try:
            results[target] = await endpoint(server.sock, target, count, seconds, clients)
        except RuntimeError as e:
            results[target] = {"error": str(e)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="sequential requests")
    parser.add_argument("--seconds", type=float, default=5, help="concurrent run length")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections")
    parser.add_argument("--starts", type=int, default=5, help="cold starts (median)")
    parser.add_argument("--no-podman", action="store_true", help="skip the podman reference")
    args = parser.parse_args()

    table: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="podapi-bench-") as tmp:
        for server in servers(Path(tmp), with_podman=not args.no_podman):
            cold = server.cold_starts(args.starts)
            with server:
                idle = rss_kib(server.pid)
                results = asyncio.run(measure(server, args.count, args.seconds, args.clients))
                table[server.name] = {
                    "endpoints": results,
                    "cold": cold,
                    "rss": idle,
                    "rss_after": rss_kib(server.pid),
                }

    for name, data in table.items():
        print(
            f"== {name}: cold start (median) {data['cold'].ping * 1000:.0f} ms to /_ping, "
            f"{data['cold'].api * 1000:.0f} ms to a container list, idle RSS "
            f"{data['rss'] / 1024:.1f} MB (after load {data['rss_after'] / 1024:.1f} MB)"
        )
        print(f"   {'endpoint':26} {'p50 ms':>8} {'p99 ms':>8} {'seq/s':>8} {'conc/s':>8}")
        for target, r in data["endpoints"].items():
            if "error" in r:
                print(f"   {target:26} {r['error']}")
                continue
            print(
                f"   {target:26} {r['p50']:8.2f} {r['p99']:8.2f} {r['seq']:8.0f} {r['conc']:8.0f}"
            )
    if "podman" in table:
        ours, theirs = table["podapi"]["endpoints"], table["podman"]["endpoints"]
        print("== podapi / podman (latency: lower is better; throughput: higher is better)")
        for target in ENDPOINTS:
            a, b = ours.get(target, {}), theirs.get(target, {})
            if "p50" in a and "p50" in b:
                print(
                    f"   {target:26} p50 x{a['p50'] / b['p50']:.2f}  "
                    f"seq x{a['seq'] / b['seq']:.2f}  conc x{a['conc'] / b['conc']:.2f}"
                )
        cold = table["podapi"]["cold"].ping / table["podman"]["cold"].ping
        print(f"   cold start x{cold:.2f}")


if __name__ == "__main__":
    main()
