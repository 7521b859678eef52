"""A long soak of the crash loop: SIGKILL the server at random moments, restart, check.

    .venv/bin/python -m bench.crashsoak [--rounds 300] [--minutes 20] [--seed N]

Runs ``tests/integration/crashloop.py`` (the loop the suite runs for about two
minutes) for longer: one podapi server with private storage, random work from
two clients, a SIGKILL after a random delay, a restart and the invariant
checks, round after round.  Prints the rounds, how many kills cut a request
short, the operations done, restart times and every server error seen.  Run it
under the integration lock: ``flock /tmp/podapi-integration.lock ...``.
"""

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from tests.fixtures.images import busybox_image
from tests.hostleaks import HostSnapshot
from tests.integration.crashloop import Workload, check_and_clean, crash_round
from tests.support import ServerProcess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    args = parser.parse_args()
    snapshot = HostSnapshot()
    archive = busybox_image().docker_archive(["acc-busybox:latest"])
    with tempfile.TemporaryDirectory(prefix="crashsoak-") as base:
        server = ServerProcess(Path(base) / "server").start()
        workload = Workload(server, archive, random.Random(args.seed))
        durations: list[float] = []
        try:
            reply = server.request("POST", "/v1.44/images/load", body=archive)
            assert reply.status == 200, reply.body
            deadline = time.monotonic() + args.minutes * 60
            for _ in range(args.rounds):
                if time.monotonic() > deadline:
                    break
                began = time.monotonic()
                crash_round(workload)
                durations.append(time.monotonic() - began)
        finally:
            tally = workload.tally
            print(f"seed {args.seed}: {tally.rounds} rounds", end=", ")
            print(f"{tally.mid_operation} kills cut a request short")
            print(f"operations: {tally.operations}")
            if durations:
                print(
                    f"round (kill, restart, checks) s: p50 {statistics.median(durations):.2f}"
                    f" max {max(durations):.2f}"
                )
            print(f"server errors: {len(tally.server_errors)}")
            for error in tally.server_errors:
                print(f"  {error}")
            if server.proc is None or server.proc.poll() is not None:
                server.start()
            check_and_clean(workload)
            server.stop()
    print(f"host leaks: {snapshot.leaks()}")


if __name__ == "__main__":
    main()
