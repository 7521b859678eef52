"""The SQLite state database: WAL, migrations, transactions."""

import sqlite3
from pathlib import Path

import pytest
import pytest_twisted

from podapi.engine.state.database import State, migrate, transaction
from podapi.testing.threads import InlineBlocking


@pytest_twisted.ensureDeferred
async def test_open_creates_schema_in_wal_mode(tmp_path: Path) -> None:
    state = State(str(tmp_path / "podapi.db"), InlineBlocking())
    version = await state.open()
    assert version >= 1
    mode = await state.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
    assert mode == "wal"
    await state.close()


@pytest_twisted.ensureDeferred
async def test_write_commits_or_rolls_back(tmp_path: Path) -> None:
    state = State(str(tmp_path / "podapi.db"), InlineBlocking())
    await state.open()

    def insert(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta VALUES ('k', 'v')")

    def insert_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta VALUES ('k2', 'v2')")
        raise RuntimeError("boom")

    await state.write(insert)
    with pytest.raises(RuntimeError):
        await state.write(insert_then_fail)
    rows = await state.read(lambda c: c.execute("SELECT key FROM meta").fetchall())
    assert [r[0] for r in rows] == ["k"]
    await state.close()


def test_migrations_apply_once_and_in_order(tmp_path: Path) -> None:
    conn = sqlite3.connect(str(tmp_path / "db"), isolation_level=None)
    steps = ("CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER); INSERT INTO b VALUES (1);")
    assert migrate(conn, steps[:1]) == 1
    assert migrate(conn, steps) == 2
    assert migrate(conn, steps) == 2
    assert conn.execute("SELECT count(*) FROM b").fetchone()[0] == 1


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer podapi is not silently downgraded."""
    conn = sqlite3.connect(str(tmp_path / "db"), isolation_level=None)
    migrate(conn, ("CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER);"))
    with pytest.raises(RuntimeError, match="newer"):
        migrate(conn, ("CREATE TABLE a (x INTEGER);",))


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    conn = sqlite3.connect(str(tmp_path / "db"), isolation_level=None)
    conn.execute("CREATE TABLE t (x INTEGER)")

    def bad(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO t VALUES (1)")
        raise ValueError("no")

    with pytest.raises(ValueError):
        transaction(conn, bad)
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
