"""kube play + kube down of a 3-container pod, podapi against ``podman system service``.

    .venv/bin/python -m bench.kube [--runs 10] [--no-podman]

Per server, after a warm-up round: the p50/p90 of ``POST /libpod/play/kube`` (a Pod
of three busybox containers, created and started; the answer comes once they run)
and of ``DELETE /libpod/play/kube`` (stopped and removed), and of the two together.
The containers leave on SIGTERM (a shell trap), so the figures are the engines' own
work, not a stop timeout.  Target (issue 13): play+down at most podman 4.3.1's.
"""

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from bench.http_client import Connection
from bench.images import load_archive
from bench.servers import Server, servers
from bench.timing import Laps, Stopwatch, laps
from tests.fixtures.images import busybox_image

IMAGE = "bench-busybox:latest"
#: ``wait`` returns at once on a trapped signal: the container stops on SIGTERM.
COMMAND = "trap 'exit 0' TERM; sleep 1000 & wait"
POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: benchpod
  labels: {app: benchpod}
spec:
  restartPolicy: Never
  containers:
""" + "".join(
    f"""\
  - name: c{index}
    image: localhost/{IMAGE}
    command: [/bin/sh, -c, "{COMMAND}"]
"""
    for index in range(3)
)
PLAY = "/v4.3.1/libpod/play/kube"


async def round_trip(conn: Connection, watch: Stopwatch) -> None:
    """One play (started) and one down, each a step of ``watch``."""
    status, body = await conn.request("POST", PLAY, POD.encode())
    if status != 200:
        raise SystemExit(f"play: HTTP {status}: {body[-400:]!r}")
    report = json.loads(body)
    [pod] = report["Pods"]
    if len(pod["Containers"]) != 3 or pod["ContainerErrors"]:
        raise SystemExit(f"play report: {report!r}")
    watch.split("play")
    status, body = await conn.request("DELETE", PLAY, POD.encode())
    if status != 200 or any(r["Err"] for r in json.loads(body)["RmReport"]):
        raise SystemExit(f"down: HTTP {status}: {body[-400:]!r}")
    watch.split("down")


async def rounds(sock: str, runs: int) -> Laps:
    """``runs`` timed rounds after a warm-up one (the pause image, the kube network)."""
    conn = await Connection.open(sock)
    try:
        return await laps(lambda watch: round_trip(conn, watch), runs)
    finally:
        conn.close()


def measure(server: Server, archive: Path, runs: int) -> dict[str, float]:
    load_archive(server, archive)
    found = asyncio.run(rounds(server.sock, runs))
    return {
        "play_p50": found.step_p50("play"),
        "down_p50": found.step_p50("down"),
        "total_p50": found.p50,
        "total_p90": found.p90,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="play+down rounds (p50 over them)")
    parser.add_argument("--no-podman", action="store_true", help="skip the podman reference")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="podapi-bench-kube-", dir="/var/tmp") as tmp:
        archive = Path(tmp) / "busybox.tar"
        archive.write_bytes(busybox_image().docker_archive([f"localhost/{IMAGE}"]))
        for server in servers(Path(tmp), with_podman=not args.no_podman):
            with server.start():
                results[server.name] = measure(server, archive, args.runs)
    print(f"== kube play + kube down of a 3-container pod ({args.runs} runs)")
    print(
        f"   {'server':8} {'play p50':>9} {'down p50':>9} {'total p50':>10} {'total p90':>10}  (ms)"
    )
    for name, r in results.items():
        print(
            f"   {name:8} {r['play_p50']:9.1f} {r['down_p50']:9.1f} {r['total_p50']:10.1f} "
            f"{r['total_p90']:10.1f}"
        )
    if {"podapi", "podman"} <= results.keys():
        a, b = results["podapi"], results["podman"]
        print(f"== podapi / podman: play+down x{a['total_p50'] / b['total_p50']:.2f} (target <= 1)")


if __name__ == "__main__":
    main()
