"""Exec session rows in the state database (blocking: run on the DB executor).

A session is ``created`` by ``POST /containers/{id}/exec``, ``running`` once
conmon has started it and ``exited`` with its code afterwards; it is kept
until its container is removed (the foreign key cascades).  Finishing is a
conditional update, like a container's exit, so it happens once.
"""

import json
import sqlite3

from attrs import frozen

from podapi.engine.containerspec import ExecSpec, exec_spec_from_json, to_json
from podapi.errors import NoSuchExecSession

CREATED, RUNNING, EXITED = "created", "running", "exited"


@frozen
class ExecRecord:
    """An exec session as stored."""

    id: str
    container_id: str
    spec: ExecSpec
    created: int
    state: str = CREATED
    pid: int = 0
    #: None until the session has exited.
    exit_code: int | None = None

    @property
    def running(self) -> bool:
        return self.state == RUNNING


def _record(row: sqlite3.Row) -> ExecRecord:
    return ExecRecord(
        id=row["id"],
        container_id=row["container_id"],
        spec=exec_spec_from_json(json.loads(row["spec"])),
        created=row["created"],
        state=row["state"],
        pid=row["pid"],
        exit_code=row["exit_code"],
    )


def insert(conn: sqlite3.Connection, record: ExecRecord) -> None:
    """Store a new session."""
    conn.execute(
        "INSERT INTO execs (id, container_id, spec, created, state) VALUES (?, ?, ?, ?, ?)",
        (
            record.id,
            record.container_id,
            json.dumps(to_json(record.spec)),
            record.created,
            record.state,
        ),
    )


def load(conn: sqlite3.Connection, exec_id: str) -> ExecRecord:
    """One session by full ID."""
    row = conn.execute("SELECT * FROM execs WHERE id = ?", (exec_id,)).fetchone()
    if row is None:
        raise NoSuchExecSession(f"no exec session with ID {exec_id} found: no such exec session")
    return _record(row)


def of_container(conn: sqlite3.Connection, container_id: str) -> list[ExecRecord]:
    """A container's sessions, oldest first."""
    rows = conn.execute(
        "SELECT * FROM execs WHERE container_id = ? ORDER BY created", (container_id,)
    )
    return [_record(row) for row in rows]


def claim_start(conn: sqlite3.Connection, exec_id: str) -> ExecRecord | None:
    """``created`` -> ``running`` (pid still 0); None when it was already started."""
    changed = conn.execute(
        "UPDATE execs SET state = ? WHERE id = ? AND state = ?", (RUNNING, exec_id, CREATED)
    ).rowcount
    return load(conn, exec_id) if changed else None


def set_pid(conn: sqlite3.Connection, exec_id: str, pid: int) -> None:
    """Record the running session's process."""
    conn.execute("UPDATE execs SET pid = ? WHERE id = ?", (pid, exec_id))


def finish(conn: sqlite3.Connection, exec_id: str, exit_code: int) -> ExecRecord | None:
    """``running`` -> ``exited``, once: None when someone else already finished it."""
    changed = conn.execute(
        "UPDATE execs SET state = ?, exit_code = ?, pid = 0 WHERE id = ? AND state = ?",
        (EXITED, exit_code, exec_id, RUNNING),
    ).rowcount
    return load(conn, exec_id) if changed else None
