"""Load: many concurrent clients doing mixed work for minutes against one podapi server.

    flock /tmp/podapi-integration.lock .venv/bin/python -m bench.load [--minutes 10] [--clients 64]

One server with private storage, a loopback registry, ``--clients`` clients
(default 64) each creating, starting, stopping, exec-ing into, reading logs of
and removing its own containers, pulling and removing its own image tag,
creating and removing volumes, listing containers, images, networks and
volumes and reading windows of past events, while event streams stay open
(the workload and its checks: ``tests/integration/loadmix.py``).  Prints:

- every unexpected status, exception and wrong answer (expected refusals, such
  as 304 for a stop of a stopped container, are counted apart);
- whether the server's lists match what the clients hold and whether each event
  stream saw exactly the events the operations imply;
- the server's RSS and open fds every ``--sample`` seconds, with min and max;
- latency percentiles per operation and the total operations;
- what is left on the host after everything is removed and the server stopped.

Exit status 1 when any of those checks failed.
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from attrs import define, field

from bench.servers import rss_kib
from tests.fixtures.images import busybox_image
from tests.fixtures.registry import Registry
from tests.hostleaks import HostSnapshot
from tests.integration.containers_support import load_image
from tests.integration.crashloop import default_subnet, nothing_left
from tests.integration.loadmix import RUN_IMAGE, Run, seed_registry
from tests.support import ServerProcess

#: Unexpected answers printed at most (a broken server can give thousands).
SHOWN = 60
#: Seconds between two ``/_ping`` probes.
PROBE = 0.5


def fd_count(pid: int) -> int:
    """Open file descriptors of ``pid``."""
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


@define
class Sampler:
    """The server's RSS and fds every ``interval`` seconds, in a thread, until stopped."""

    pid: int
    run: Run
    interval: float
    #: (seconds since start, RSS KiB, fds, containers held, operations so far)
    rows: list[tuple[float, int, int, int, int]] = field(factory=list)
    _stop: threading.Event = field(factory=threading.Event)
    _began: float = field(factory=time.monotonic)
    _threads: list[threading.Thread] = field(factory=list)

    def sample(self) -> None:
        held = sum(len(c.containers) for c in self.run.clients)
        self.rows.append(
            (
                time.monotonic() - self._began,
                rss_kib(self.pid),
                fd_count(self.pid),
                held,
                self.run.tally.operations,
            )
        )

    def loop(self) -> None:
        self.sample()
        while not self._stop.wait(self.interval):
            self.sample()

    def probe(self) -> None:
        """``/_ping`` on its own connection every ``PROBE`` s: its latency bounds how long
        the reactor went without turning to new work (a stall shows as a long ping)."""
        while not self._stop.wait(PROBE):
            began = time.perf_counter()
            try:
                reply = self.run.server.request("GET", "/_ping", timeout=60)
                if reply.status != 200:
                    self.run.tally.error(f"/_ping: {reply.status} {reply.body[:200]!r}")
            except OSError as e:
                self.run.tally.error(f"/_ping: {type(e).__name__} {e}")
            self.run.tally.lap("_ping (probe)", (time.perf_counter() - began) * 1000)

    def __enter__(self) -> "Sampler":
        self._threads = [
            threading.Thread(target=self.loop, daemon=True),
            threading.Thread(target=self.probe, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)
        self.sample()


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def report_latencies(run: Run, elapsed: float) -> None:
    tally = run.tally
    print(f"== {tally.operations} requests in {elapsed:.0f} s ({tally.operations / elapsed:.1f}/s)")
    print(
        f"   {'operation':20} {'count':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    for op, laps in sorted(tally.latencies.items()):
        ordered = sorted(laps)
        print(
            f"   {op:20} {len(laps):7} {statistics.median(ordered):8.1f} "
            f"{percentile(ordered, 0.9):8.1f} {percentile(ordered, 0.99):8.1f} {ordered[-1]:8.1f}"
        )
    refused = ", ".join(f"{op} {n}" for op, n in sorted(tally.expected_refusals.items()))
    print(f"== expected refusals (304/404/409): {refused or 'none'}")


def report_samples(sampler: Sampler) -> None:
    print(f"== server RSS and fds every {sampler.interval:.0f} s")
    print(f"   {'t s':>6} {'RSS MiB':>8} {'fds':>6} {'containers':>10} {'requests':>9}")
    for t, rss, fds, held, ops in sampler.rows:
        print(f"   {t:6.0f} {rss / 1024:8.1f} {fds:6} {held:10} {ops:9}")
    rss = [row[1] / 1024 for row in sampler.rows]
    fds = [row[2] for row in sampler.rows]
    print(f"   RSS MiB min {min(rss):.1f} max {max(rss):.1f}; fds min {min(fds)} max {max(fds)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    snapshot = HostSnapshot()
    problems: list[str] = []
    errors: list[str] = []
    expected, watched = 0, []
    with tempfile.TemporaryDirectory(prefix="podapi-bench-load-", dir="/var/tmp") as tmp:
        base = Path(tmp)
        archive = base / "busybox.tar"
        archive.write_bytes(busybox_image().docker_archive([RUN_IMAGE]))
        registry = Registry(base / "registry").start()
        server = ServerProcess(base / "server")
        try:
            refs = seed_registry(registry, base, args.clients)
            server.start()
            load_image(server, archive)
            run = Run.prepare(server, refs, args.minutes * 60)
            began = time.monotonic()
            assert server.proc is not None
            with Sampler(server.proc.pid, run, args.sample) as sampler:
                run.go()
                elapsed = time.monotonic() - began
                problems += run.problems()
                problems += run.remove_everything()
            errors = run.tally.errors
            expected = sum(run.tally.events.values())
            watched = [sum(w.counted.values()) for w in run.watchers]
            report_latencies(run, elapsed)
            report_samples(sampler)
            try:
                nothing_left(server, [default_subnet(server)])
            except AssertionError as e:
                problems.append(f"left behind by the server: {e}")
        finally:
            server.remove_containers()
            server.stop()
            registry.stop()
    problems += [f"left on the host: {leak}" for leak in snapshot.leaks()]
    if watched:
        print(f"== events the operations imply: {expected}; each stream saw: {watched}")
    print(f"== unexpected answers: {len(errors)}")
    for error in errors[:SHOWN]:
        print(f"   {error}")
    if len(errors) > SHOWN:
        print(f"   ... and {len(errors) - SHOWN} more")
    print(f"== objects, events and host: {len(problems)} problems")
    for problem in problems:
        print(f"   {problem}")
    return 1 if errors or problems else 0


if __name__ == "__main__":
    sys.exit(main())
