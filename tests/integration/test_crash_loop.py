"""SIGKILL of the server at random moments of random work, a few dozen times (bounded).

The loop itself, and what is checked after each restart, is
``tests/integration/crashloop.py``; ``bench/crashsoak.py`` runs it for longer.
"""

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.containers_support import load_image
from tests.integration.crashloop import Workload, run_rounds
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

ROUNDS = 30
#: Seconds; rounds stop early past it, so the test stays near two minutes.
BUDGET = 110.0


def test_random_kills_leave_usable_state(
    start_server: Callable[..., ServerProcess], busybox_archive: Path
) -> None:
    server = start_server()
    load_image(server, busybox_archive)
    seed = random.randrange(1 << 30)
    workload = Workload(server, busybox_archive.read_bytes(), random.Random(seed))
    tally = run_rounds(workload, ROUNDS, BUDGET)
    print(f"crash loop (seed {seed}): {tally}")
    assert tally.rounds >= 10, tally
    assert tally.server_errors == [], (seed, tally.server_errors)
