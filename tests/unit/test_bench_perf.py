"""bench.perf's table: the derived row, the ratios and the targets' verdicts.

The measurements themselves run by hand (``bench/``); these are the pure parts
that decide what the printed table claims.
"""

from bench.perf import ROWS, derive, table, verdict
from bench.timing import Laps, percentile

BY_KEY = {row.key: row for row in ROWS}


def line(lines: list[str], label: str) -> str:
    [found] = [text for text in lines if text.startswith(label)]
    return found


def test_cold_start_is_judged_against_the_floor() -> None:
    figures = {"cold": {"podapi": 360.0, "podman": 80.0}, "floor": {"podapi": 300.0}}
    derive(figures)
    assert figures["cold-floor"] == {"podapi": 60.0}
    assert verdict(BY_KEY["cold"], figures) == "NO"
    assert verdict(BY_KEY["cold-floor"], figures) == "NO"
    figures = {"cold": {"podapi": 340.0}, "floor": {"podapi": 300.0}}
    derive(figures)
    assert verdict(BY_KEY["cold"], figures) == "yes"
    assert verdict(BY_KEY["cold-floor"], figures) == "yes"


def test_ratio_targets_and_direction() -> None:
    figures = {
        "ping32": {"podapi": 1400.0, "podman": 1000.0},
        "rss": {"podapi": 40.0, "podman": 41.0},
        "load": {"podapi": 400.0, "podman": 100.0},
    }
    assert verdict(BY_KEY["ping32"], figures) == "NO"  # 1.4x, needs 1.5x
    assert verdict(BY_KEY["rss"], figures) == "yes"  # lower is better
    assert verdict(BY_KEY["load"], figures) == "yes"  # exactly 4x


def test_a_missing_figure_or_threshold_gives_no_verdict() -> None:
    assert verdict(BY_KEY["ping"], {"ping": {"podapi": 900.0}}) == "-"  # no podman
    assert verdict(BY_KEY["cycle"], {"cycle": {"podapi": 50.0}}) == "-"  # no runc
    assert verdict(BY_KEY["save"], {"save": {"podapi": 9.0, "podman": 1.0}}) == "-"


def test_table_prints_measured_rows_with_ratio_and_size() -> None:
    figures = {
        "cycle": {"podapi": 60.04, "podman": 300.0},
        "runc-seccomp": {"podapi": 30.0},
        "load": {"podapi": 500.0, "podman": 250.0},
    }
    lines = table(figures, 536.9)
    assert len(lines) == 4  # header and the three measured rows only
    cycle = line(lines, "create+start+wait+rm")
    assert "60.0" in cycle
    assert " 0.20 " in cycle
    assert cycle.endswith("NO")  # 60.04 > 2 x 30
    assert line(lines, "load of a 537 MB archive").split()[-1] == "NO"  # 2x, needs 4x
    assert line(lines, "  the same with the default seccomp").split()[-1] == "-"


def test_each_cycle_is_judged_against_its_own_floor() -> None:
    """With the default seccomp filter against runc with it; unconfined against bare runc."""
    figures = {
        "cycle": {"podapi": 90.0},
        "cycle-unconfined": {"podapi": 45.0},
        "runc": {"podapi": 25.0},
        "runc-seccomp": {"podapi": 50.0},
    }
    assert verdict(BY_KEY["cycle"], figures) == "yes"  # 90 <= 2 x 50
    assert verdict(BY_KEY["cycle-unconfined"], figures) == "yes"  # 45 <= 2 x 25
    figures["runc"] = {"podapi": 20.0}
    assert verdict(BY_KEY["cycle-unconfined"], figures) == "NO"
    assert verdict(BY_KEY["cycle"], figures) == "yes"  # not judged against bare runc


def test_laps_percentiles() -> None:
    laps = Laps(tuple(float(n) for n in range(1, 11)), tuple({"a": n} for n in range(10)))
    assert laps.p50 == 5.5
    assert laps.p90 == 10.0
    assert laps.step_p50("a") == 4.5
    assert percentile([3.0, 1.0, 2.0], 0.99) == 3.0
