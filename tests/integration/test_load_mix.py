"""Sixteen clients doing mixed work at once for half a minute (a bounded ``bench/load.py``).

The workload and its checks are ``tests/integration/loadmix.py``: every answer
is the one status the client's own state implies (no 5xx, no stray 4xx), every
list shows each client's objects exactly, every open event stream sees exactly
the events the operations imply, and nothing is left once all is removed.
"""

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.registry import Registry
from tests.integration.containers_support import assert_nothing_leaked, load_image
from tests.integration.loadmix import Run, seed_registry
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

CLIENTS = 16
SECONDS = 25.0


def test_mixed_load_loses_nothing_and_answers_as_expected(
    start_server: Callable[..., ServerProcess],
    busybox_archive: Path,
    registry: Registry,
    tmp_path: Path,
) -> None:
    server = start_server()
    load_image(server, busybox_archive)
    run = Run.prepare(server, seed_registry(registry, tmp_path, CLIENTS), SECONDS)
    run.go()
    print(f"{run.tally.operations} requests; refusals as expected: {run.tally.expected_refusals}")
    assert run.tally.errors == []
    assert run.tally.operations > CLIENTS * 10
    assert run.problems() == []
    assert run.remove_everything() == []
    assert_nothing_leaked(server)
