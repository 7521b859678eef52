"""Volume rows: which volumes a container's removal takes with it."""

import sqlite3
from pathlib import Path

import pytest_twisted

from podapi.engine.state import volumes as rows
from podapi.engine.state.database import State
from podapi.engine.state.volumes import VolumeRecord
from podapi.testing.threads import InlineBlocking


@pytest_twisted.ensureDeferred
async def test_delete_unused_anonymous_spares_named_held_and_unknown(tmp_path: Path) -> None:
    state = State(str(tmp_path / "podapi.db"), InlineBlocking())
    await state.open()

    def setup(conn: sqlite3.Connection) -> None:
        for name, anonymous in (("anon-free", True), ("anon-held", True), ("named", False)):
            rows.insert(
                conn, VolumeRecord(name=name, driver="local", created=1, anonymous=anonymous)
            )
        rows.hold(conn, "anon-held", "transfer-1")

    await state.write(setup)
    wanted = ["anon-free", "anon-held", "named", "unknown", "anon-free"]
    deleted = await state.write(lambda conn: rows.delete_unused_anonymous(conn, wanted))
    assert deleted == ["anon-free"]
    left = await state.read(rows.usage_all)
    assert [u.record.name for u in left] == ["anon-held", "named"]
    await state.close()
