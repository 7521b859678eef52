"""Issue 15's performance table: podapi and ``podman system service`` side by side.

    .venv/bin/python -m bench.perf [--no-podman] [--only ROW ...] [--quick]

Run it under the integration lock (``flock /tmp/podapi-integration.lock ...``);
the full run takes about two and a half minutes with podman on the 2-core
machine (``--quick``: fewer rounds and a 64 MB image).  Each server runs
alone, with private storage (``bench/servers.py``); the figures come from the
other benchmarks' functions.  One row a figure (``ROW`` names for ``--only``):

``cold``
    exec to the first 200 on ``/_ping``, median of 7 starts (3 quick) on the
    same storage (socket activation and the idle timeout make every first
    request after idle pay it).  Target: at most 50 ms above ``floor``.
``cold-api``
    exec to the first 200 on ``GET /containers/json`` in the same starts: what
    the first real request after an idle exit waits (podapi listens and answers
    ``/_ping`` before it has imported the engine, which the other requests wait
    for).  No target: shown so that ``cold`` is not read as all of a start.
``floor``
    the same for ``bench/floor.py``: a script importing the reactor,
    ``twisted.web`` and Klein, answering ``/_ping`` (no podapi code); what
    podapi's start can never beat.  ``cold-floor`` is podapi minus it.
``rss``
    the server's resident memory right after the last start.  Target: at most
    podman's.  ``rss-floor``: the same for ``bench/floor.py`` (Twisted, Klein
    and the OpenSSL/cryptography libraries Klein's imports load: what podapi
    holds before any of its own code).
``ping`` / ``ping32``
    ``/_ping`` requests a second, sequential over one keep-alive connection /
    with 32 connections.  Targets: at least 1x / 1.5x podman's.
``cycle``
    create + start + wait + remove of ``true`` (network ``none``, compat API),
    p50 of 30 (10 quick) after a warm-up.  The container gets the default
    seccomp filter, as every podapi and Podman container does, and runc compiles
    it on each start: target at most 2x ``runc-seccomp``, the floor for an
    engine that keeps the filter.
``cycle-unconfined``
    the same cycle created with ``SecurityOpt: ["seccomp=unconfined"]``: the
    engine's own cost compared like for like with ``runc``.  Target: at most 2x
    ``runc``.
``runc``
    a bare ``runc run`` of ``true`` in a busybox bundle (``bench/bare_runc.py``),
    p50: the least any engine can do.  ``runc-seccomp``: the same with the
    default seccomp filter podapi and Podman give every container (runc compiles
    and loads it on each start): the floor for an engine that keeps it.  With
    their cycle rows they are measured in turn with podapi's cycles, in five
    blocks each (these VMs' CPU speed drifts over minutes).
``load`` / ``save``
    ``POST /images/load`` and ``GET /images/{name}/get`` of a 512 MB
    docker-archive (64 MB with ``--quick``), MB/s.  Targets: load at least 4x
    podman's; save keeps its lead (13x podman's when the issue was filed).
``create10`` / ``list10`` / ``create1000`` / ``list1000``
    ``POST /containers/create`` p50 (each removed again, so the count stays)
    and ``GET /containers/json?all=1`` p50, with 10 and with 1000 created
    containers.  Targets: list1000 under 50 ms; neither grows with the count
    beyond the answer's size (create1000 at most 1.25x create10).

Columns: podapi, podman 4.3.1 (the reference rows ``floor``, ``runc`` and
``runc-seccomp`` show their one figure under podapi), the podapi/podman ratio,
the target, and whether podapi meets it (``-``: a figure is missing, or the target is no
threshold).
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from attrs import frozen

from bench import bare_runc
from bench.containers import IMAGE, at_scale, cycles
from bench.images import build_archive, load_and_save, load_archive
from bench.servers import Floor, Server, rss_kib, servers
from bench.system import endpoint
from bench.timing import Laps
from tests.fixtures.images import busybox_image

#: row key -> column ("podapi", "podman") -> figure.
Figures = dict[str, dict[str, float]]


def ours(figures: Figures, row: str) -> float:
    return figures[row]["podapi"]


def ratio(figures: Figures, row: str) -> float:
    """podapi's figure over podman's."""
    return figures[row]["podapi"] / figures[row]["podman"]


@frozen
class Row:
    """One figure of the table and its target.

    :ivar met: whether podapi meets the target, given all the figures (it may
        read other rows); ``None`` for rows that set no threshold.
    """

    key: str
    label: str
    digits: int
    target: str = ""
    met: Callable[[Figures], bool] | None = None


ROWS = (
    Row(
        "cold",
        "cold start to first /_ping, ms",
        0,
        "<= floor + 50 ms",
        lambda f: ours(f, "cold") <= ours(f, "floor") + 50,
    ),
    Row("cold-api", "  to first container list, ms", 0, "reference"),
    Row("floor", "  floor: Twisted + Klein alone, ms", 0, "reference"),
    Row(
        "cold-floor",
        "  podapi minus floor, ms",
        0,
        "<= 50 ms",
        lambda f: ours(f, "cold-floor") <= 50,
    ),
    Row("rss", "idle RSS after start, MB", 1, "<= podman", lambda f: ratio(f, "rss") <= 1),
    Row("rss-floor", "  floor: Twisted + Klein alone, MB", 1, "reference"),
    Row(
        "ping",
        "/_ping req/s, 1 keep-alive client",
        0,
        ">= 1x podman",
        lambda f: ratio(f, "ping") >= 1,
    ),
    Row(
        "ping32",
        "/_ping req/s, 32 clients",
        0,
        ">= 1.5x podman",
        lambda f: ratio(f, "ping32") >= 1.5,
    ),
    Row(
        "cycle",
        "create+start+wait+rm `true` p50, ms",
        1,
        "<= 2x runc-seccomp",
        lambda f: ours(f, "cycle") <= 2 * ours(f, "runc-seccomp"),
    ),
    Row(
        "cycle-unconfined",
        "  the same, seccomp=unconfined, ms",
        1,
        "<= 2x bare runc",
        lambda f: ours(f, "cycle-unconfined") <= 2 * ours(f, "runc"),
    ),
    Row("runc", "  bare `runc run` of `true` p50, ms", 1, "reference"),
    Row("runc-seccomp", "  the same with the default seccomp, ms", 1, "reference"),
    Row(
        "load",
        "load of a {mb} MB archive, MB/s",
        0,
        ">= 4x podman",
        lambda f: ratio(f, "load") >= 4,
    ),
    Row("save", "save of the same, MB/s", 0, "keep (13x at filing)"),
    Row(
        "list1000",
        "/containers/json, 1000 ctrs p50, ms",
        1,
        "< 50 ms",
        lambda f: ours(f, "list1000") < 50,
    ),
    Row("list10", "/containers/json, 10 ctrs p50, ms", 1, "reference"),
    Row("create10", "create with 10 ctrs p50, ms", 1, "reference"),
    Row(
        "create1000",
        "create with 1000 ctrs p50, ms",
        1,
        "<= 1.25x create10",
        lambda f: ours(f, "create1000") <= 1.25 * ours(f, "create10"),
    ),
)
KEYS = tuple(row.key for row in ROWS)


def derive(figures: Figures) -> None:
    """Add the rows computed from others (podapi's cold start minus the floor)."""
    if "podapi" in figures.get("cold", {}) and "floor" in figures:
        figures["cold-floor"] = {"podapi": ours(figures, "cold") - ours(figures, "floor")}


def verdict(row: Row, figures: Figures) -> str:
    """``yes``/``NO`` for a row's target, ``-`` without a threshold or a figure it needs."""
    if row.met is None:
        return "-"
    try:
        return "yes" if row.met(figures) else "NO"
    except KeyError:
        return "-"


def table(figures: Figures, size_mb: float) -> list[str]:
    """The table's lines: every row with a figure, in the issue's order."""
    lines = [
        f"{'figure':40} {'podapi':>9} {'podman':>9} {'ratio':>6}  {'target':22} met?",
    ]
    for row in ROWS:
        found = figures.get(row.key)
        if not found:
            continue
        cells = [
            f"{found[column]:9.{row.digits}f}" if column in found else f"{'':9}"
            for column in ("podapi", "podman")
        ]
        share = f"{ratio(figures, row.key):6.2f}" if len(found) == 2 else f"{'':6}"
        label = row.label.format(mb=round(size_mb))
        lines.append(
            f"{label:40} {' '.join(cells)} {share}  {row.target:22} {verdict(row, figures)}"
        )
    return lines


@frozen
class Settings:
    """How much of each measurement a run does."""

    starts: int
    runs: int
    count: int
    seconds: float
    image_mb: int
    scale: tuple[int, int] = (10, 1000)

    @classmethod
    def make(cls, quick: bool) -> "Settings":
        if quick:
            return cls(starts=3, runs=10, count=500, seconds=2, image_mb=64)
        return cls(starts=7, runs=30, count=2000, seconds=5, image_mb=512)


#: Blocks the cycle rows and their floors are measured in, taking turns: the CPU
#: speed of these VMs drifts by up to 1.5x over minutes, so figures compared with
#: each other must come from the same minutes.
BLOCKS = 5


def in_turn(measures: dict[str, Callable[[int], Laps]], runs: int) -> dict[str, float]:
    """The p50 of each measure over ``runs`` rounds, taken in :data:`BLOCKS` blocks in turn
    (a measure is given the rounds of one block)."""
    samples: dict[str, list[float]] = {key: [] for key in measures}
    for _ in range(BLOCKS):
        for key, measure in measures.items():
            samples[key] += measure(max(1, runs // BLOCKS)).totals
    return {key: statistics.median(found) for key, found in samples.items()}


def cycle_rows(
    server: Server, wanted: Callable[..., bool], runs: int, *, floors: bool
) -> dict[str, float]:
    """The cycle rows ``wanted`` asks for and, with ``floors``, the bare runc runs they
    are judged against, measured in turn."""

    def cycle(unconfined: bool) -> Callable[[int], Laps]:
        return lambda n: asyncio.run(cycles(server.sock, n, "none", unconfined=unconfined))

    measures: dict[str, Callable[[int], Laps]] = {}
    if wanted("cycle"):
        measures["cycle"] = cycle(False)
        if floors:
            measures["runc-seccomp"] = lambda n: bare_runc.measure(n, confined=True)
    if wanted("cycle-unconfined"):
        measures["cycle-unconfined"] = cycle(True)
        if floors:
            measures["runc"] = bare_runc.measure
    return in_turn(measures, runs)


def measure_server(
    server: Server, wanted: Callable[..., bool], settings: Settings, busybox: Path, big: Path
) -> dict[str, float]:
    """The per-server rows ``wanted`` asks for, in one life of the server (after the
    cold starts, when asked for)."""
    found: dict[str, float] = {}
    if wanted("cold", "cold-floor", "cold-api", "rss"):
        cold = server.cold_starts(settings.starts)
        found |= {"cold": cold.ping * 1000, "cold-api": cold.api * 1000}
        found["rss"] = rss_kib(server.pid) / 1024
    else:
        server.start()
    with server:
        if wanted("ping", "ping32"):
            rates = asyncio.run(
                endpoint(server.sock, "/_ping", settings.count, settings.seconds, 32)
            )
            found |= {"ping": rates["seq"], "ping32": rates["conc"]}
        if wanted("cycle", "cycle-unconfined", "list10", "create10", "list1000", "create1000"):
            load_archive(server, busybox)
        if wanted("cycle", "cycle-unconfined"):
            found |= cycle_rows(server, wanted, settings.runs, floors=server.name == "podapi")
        if wanted("load", "save"):
            moved = load_and_save(server, big)
            found |= {"load": moved.load, "save": moved.save}
        if wanted("list10", "create10", "list1000", "create1000"):
            for count, scaled in at_scale(server, settings.scale).items():
                found |= {f"create{count}": scaled.create_p50, f"list{count}": scaled.list_p50}
    return found


def run(selected: Iterable[str], settings: Settings, with_podman: bool) -> tuple[Figures, float]:
    """Measure the ``selected`` rows; the figures and the image archive's size (MB)."""
    chosen = set(selected)

    def wanted(*rows: str) -> bool:
        return not chosen.isdisjoint(rows)

    figures: Figures = {}
    size_mb = 0.0
    with tempfile.TemporaryDirectory(prefix="podapi-bench-perf-", dir="/var/tmp") as tmp:
        base = Path(tmp)
        if wanted("floor", "cold-floor", "cold", "rss-floor"):
            floor = Floor(base / "floor")
            with floor:
                figures["floor"] = {"podapi": floor.cold_starts(settings.starts).ping * 1000}
                figures["rss-floor"] = {"podapi": rss_kib(floor.pid) / 1024}
        # Alone only without their cycle row, which measures them in turn with it.
        if wanted("runc") and not wanted("cycle-unconfined"):
            figures["runc"] = {"podapi": bare_runc.measure(settings.runs).p50}
        if wanted("runc-seccomp") and not wanted("cycle"):
            confined = bare_runc.measure(settings.runs, confined=True)
            figures["runc-seccomp"] = {"podapi": confined.p50}
        busybox, big = base / "busybox.tar", base / "big.tar"
        busybox.write_bytes(busybox_image().docker_archive([IMAGE]))
        if wanted("load", "save"):
            build_archive(big, settings.image_mb)
            size_mb = big.stat().st_size / 1e6
        for server in servers(base, with_podman=with_podman):
            measured = measure_server(server, wanted, settings, busybox, big)
            for key, value in measured.items():
                figures.setdefault(key, {})[server.name] = value
    derive(figures)
    return figures, size_mb


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-podman", action="store_true", help="skip the podman reference")
    parser.add_argument("--only", nargs="+", choices=KEYS, metavar="ROW", help=", ".join(KEYS))
    parser.add_argument("--quick", action="store_true", help="fewer rounds, a 64 MB image")
    args = parser.parse_args()
    settings = Settings.make(args.quick)
    t0 = time.monotonic()
    figures, size_mb = run(args.only or KEYS, settings, not args.no_podman)
    commit = subprocess.run(
        ["git", "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"== issue 15 table at {commit[:72]}")
    print(f"   {settings}")
    for line in table(figures, size_mb):
        print(line)
    load = " ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"== {time.monotonic() - t0:.0f} s; load average at the end {load}")


if __name__ == "__main__":
    main()
