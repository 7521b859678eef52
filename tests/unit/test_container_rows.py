"""Container rows: name and ID-prefix resolution, unique names, exits claimed once."""

import sqlite3
from collections.abc import Callable

import pytest

from podapi.engine.containers import run_config
from podapi.engine.containerspec import ContainerSpec
from podapi.engine.naming import generate_name
from podapi.engine.state import containers as rows
from podapi.engine.state.containers import (
    COMMIT_PAUSE,
    CREATED,
    EXITED,
    RUNNING,
    SETTLING,
    STARTING,
    ContainerRecord,
)
from podapi.engine.state.database import migrate
from podapi.errors import Conflict


@pytest.fixture
def conn() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    connection.row_factory = sqlite3.Row  # as the state database sets it
    migrate(connection)
    return connection


def record(container_id: str, name: str) -> ContainerRecord:
    spec = ContainerSpec(image="busybox", command=("true",))
    return ContainerRecord(
        id=container_id,
        name=name,
        image_id="i" * 64,
        image_name="busybox",
        created=1,
        spec=spec,
        run=run_config(spec, {}, container_id, container_id[:12]),
        state=CREATED,
    )


def test_resolves_full_id_name_and_unique_prefix(conn: sqlite3.Connection) -> None:
    first, second = "ab12" + "0" * 60, "ab34" + "0" * 60
    rows.insert(conn, record(first, "web"))
    rows.insert(conn, record(second, "db"))
    assert rows.resolve(conn, first) == first
    assert rows.resolve(conn, "web") == first
    assert rows.resolve(conn, "/db") == second
    assert rows.resolve(conn, "ab3") == second
    assert rows.resolve(conn, "cd") is None
    assert rows.resolve(conn, "nope") is None
    with pytest.raises(Conflict, match="more than one container"):
        rows.resolve(conn, "ab")


def test_a_name_resolves_before_an_id_prefix(conn: sqlite3.Connection) -> None:
    rows.insert(conn, record("abc" + "0" * 61, "x"))
    rows.insert(conn, record("def" + "0" * 61, "abc"))
    assert rows.resolve(conn, "abc") == "def" + "0" * 61


def test_names_are_unique(conn: sqlite3.Connection) -> None:
    rows.insert(conn, record("a" * 64, "web"))
    with pytest.raises(Conflict, match='"/web" is already in use'):
        rows.insert(conn, record("b" * 64, "web"))
    rows.insert(conn, record("b" * 64, "api"))
    with pytest.raises(Conflict, match="in use"):
        rows.rename(conn, "b" * 64, "web")
    assert rows.rename(conn, "b" * 64, "api2").name == "api2"


def test_an_exit_is_claimed_once_per_run(conn: sqlite3.Connection) -> None:
    cid = "c" * 64
    rows.insert(conn, record(cid, "job"))
    rows.update(conn, cid, state=RUNNING, run_id=1, pid=42)
    claimed = rows.claim_exit(conn, cid, 1, exit_code=3, finished_at=9, oom_killed=False)
    assert claimed is not None
    assert (claimed.state, claimed.exit_code, claimed.pid) == (EXITED, 3, 0)
    assert rows.claim_exit(conn, cid, 1, exit_code=0, finished_at=10, oom_killed=False) is None
    rows.update(conn, cid, state=RUNNING, run_id=2)
    # A late exit of the previous run does not end the new one.
    assert rows.claim_exit(conn, cid, 1, exit_code=0, finished_at=11, oom_killed=False) is None
    assert rows.load(conn, cid).state == RUNNING


def test_an_exit_stays_unfinished_until_its_clean_up_is_done(conn: sqlite3.Connection) -> None:
    """Reconcile after a crash finds a claimed exit whose events and --rm never ran."""
    cid = "c" * 64
    rows.insert(conn, record(cid, "job"))
    rows.update(conn, cid, state=RUNNING, run_id=1)
    assert rows.claim_exit(conn, cid, 1, exit_code=0, finished_at=9, oom_killed=False)
    assert rows.load(conn, cid).unfinished == SETTLING
    rows.finish_step(conn, cid, SETTLING)
    assert rows.load(conn, cid).unfinished == ""


def test_a_step_is_finished_only_by_its_own_end(conn: sqlite3.Connection) -> None:
    """A commit's pause does not start over an exit under way, and ending it does not
    wipe a start that replaced it."""
    cid = "c" * 64
    rows.insert(conn, record(cid, "job"))
    rows.update(conn, cid, unfinished=SETTLING)
    assert rows.begin_step(conn, cid, COMMIT_PAUSE) is False
    rows.update(conn, cid, unfinished="")
    assert rows.begin_step(conn, cid, COMMIT_PAUSE) is True
    rows.update(conn, cid, unfinished=STARTING)
    rows.finish_step(conn, cid, COMMIT_PAUSE)
    assert rows.load(conn, cid).unfinished == STARTING


def test_generated_names_avoid_names_in_use(conn: sqlite3.Connection) -> None:
    offered = iter(["web", "web", "db"])

    def name_for(taken: Callable[[str], bool]) -> str:
        return next(name for name in offered if not taken(name))

    rows.insert(conn, record("a" * 64, "web"))
    stored = rows.insert(conn, record("b" * 64, ""), name_for=name_for)
    assert stored.name == "db"
    assert rows.load(conn, "b" * 64).name == "db"
    generated = rows.insert(conn, record("c" * 64, ""), name_for=generate_name)
    assert generated.name not in ("web", "db", "")
