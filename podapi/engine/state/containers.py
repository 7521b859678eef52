"""Container rows in the state database (blocking: run on the DB executor).

The server and ``podapi.cleanup`` (run by conmon when a container exits, even
while no server runs) both write here; an exit is *claimed* with a
conditional update on ``run_id`` so exactly one of them handles it.
"""

import json
import sqlite3
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from attrs import evolve, field, frozen

from podapi.engine.containerspec import (
    ContainerSpec,
    RunConfig,
    run_config_from_json,
    spec_from_json,
    to_json,
)
from podapi.engine.state import volumes as volume_rows
from podapi.engine.state.database import ids_with_prefix
from podapi.errors import Conflict, NoSuchContainer
from podapi.oci.netavark import NetworkSetup

#: Podman's container states; the compat dialect maps them to Docker's words.
CREATED, INITIALIZED, RUNNING, PAUSED, STOPPING, EXITED, REMOVING = (
    "created",
    "initialized",
    "running",
    "paused",
    "stopping",
    "exited",
    "removing",
)
#: States in which a container has a live process (and a conmon).
ALIVE = frozenset({RUNNING, PAUSED, STOPPING})
#: Steps stored as ``unfinished`` while under way, so that reconcile after a crash
#: finishes or undoes them: a start (from the network setup until the state says
#: running), the settling of an exit (from its claim until events, ``--rm`` and the
#: restart policy are done) and a commit's pause (until the container is resumed).
STARTING, SETTLING, COMMIT_PAUSE = "start", "exit", "commit"


@frozen
class ContainerRecord:
    """A container as stored."""

    id: str
    name: str
    image_id: str
    #: The image's full name the container was made from, as Podman's
    #: ``RootfsImageName`` (``docker.io/library/busybox:latest``); ``spec.image``
    #: keeps what the client wrote (``busybox``), which Docker's API shows.
    image_name: str
    created: int
    spec: ContainerSpec
    run: RunConfig
    state: str
    pid: int = 0
    conmon_pid: int = 0
    exit_code: int = 0
    started_at: int = 0
    finished_at: int = 0
    restart_count: int = 0
    run_id: int = 0
    oom_killed: bool = False
    error: str = ""
    stopped_by_user: bool = False
    health_status: str = ""
    health_failing: int = 0
    health_log: tuple[Mapping[str, Any], ...] = ()
    #: What netavark set up while the container runs (kept until torn down).
    network_status: NetworkSetup = field(factory=NetworkSetup)
    #: A step under way (:data:`STARTING`, :data:`SETTLING`, :data:`COMMIT_PAUSE`) or "".
    unfinished: str = ""

    @property
    def alive(self) -> bool:
        """Whether the container has a process right now."""
        return self.state in ALIVE


_SIMPLE = (
    "state",
    "pid",
    "conmon_pid",
    "exit_code",
    "started_at",
    "finished_at",
    "restart_count",
    "run_id",
    "error",
    "health_status",
    "health_failing",
    "unfinished",
)


class _Decoded:
    """Records already decoded, by container ID, each with the row it came from.

    Decoding a row's JSON columns (spec, run configuration, network status) costs
    a hundred times more than comparing the row with the one decoded last time, and
    a list reads every container: a row equal to the remembered one gives back the
    remembered (immutable) record.  The row stays the only truth: any change to any
    column, by this process or by ``podapi.cleanup``, decodes anew.  Entries live as
    long as their container: :func:`delete` and every full read drop the others.
    """

    def __init__(self) -> None:
        self._records: dict[str, tuple[tuple[Any, ...], ContainerRecord]] = {}

    def record(self, row: sqlite3.Row) -> ContainerRecord:
        """The record of ``row``."""
        values = tuple(row)
        known = self._records.get(row["id"])
        if known is not None and known[0] == values:
            return known[1]
        record = _decode(row)
        self._records[record.id] = (values, record)
        return record

    def keep_only(self, ids: set[str]) -> None:
        """Forget the containers not in ``ids`` (all that exist)."""
        for gone in self._records.keys() - ids:
            del self._records[gone]

    def forget(self, container_id: str) -> None:
        """Forget one container."""
        self._records.pop(container_id, None)


_decoded = _Decoded()


def _record(row: sqlite3.Row) -> ContainerRecord:
    return _decoded.record(row)


def _decode(row: sqlite3.Row) -> ContainerRecord:
    return ContainerRecord(
        id=row["id"],
        name=row["name"],
        image_id=row["image_id"],
        image_name=row["image_name"],
        created=row["created"],
        spec=spec_from_json(json.loads(row["spec"])),
        run=run_config_from_json(json.loads(row["run"])),
        oom_killed=bool(row["oom_killed"]),
        stopped_by_user=bool(row["stopped_by_user"]),
        health_log=tuple(json.loads(row["health_log"])),
        network_status=NetworkSetup.from_json(json.loads(row["network_status"])),
        **{key: row[key] for key in _SIMPLE},
    )


def insert(
    conn: sqlite3.Connection,
    record: ContainerRecord,
    name_for: Callable[[Callable[[str], bool]], str] | None = None,
) -> ContainerRecord:
    """Store a new container; ``Conflict`` when the name is taken.

    :param name_for: names a container that has none, given a test for names
        in use (in the same transaction, so two creates never pick one name).
    """
    if name_for is not None:
        record = evolve(record, name=name_for(partial(name_taken, conn)))
    taken = conn.execute("SELECT id FROM containers WHERE name = ?", (record.name,)).fetchone()
    if taken:
        raise Conflict(
            f'Conflict. The container name "/{record.name}" is already in use by container '
            f'"{taken[0]}". You have to remove (or rename) that container to be able to reuse '
            "that name.",
            cause="name is already in use",
        )
    conn.execute(
        "INSERT INTO containers (id, name, image_id, image_name, created, spec, run, state) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.id,
            record.name,
            record.image_id,
            record.image_name,
            record.created,
            json.dumps(to_json(record.spec)),
            json.dumps(to_json(record.run)),
            record.state,
        ),
    )
    return record


def _column_value(key: str, value: Any) -> Any:
    if key == "spec":
        return json.dumps(to_json(value))
    if key == "health_log":
        return json.dumps(list(value))
    if key == "network_status":
        return json.dumps(value.to_json())
    if key in ("oom_killed", "stopped_by_user"):
        return int(bool(value))
    return value


def update(conn: sqlite3.Connection, container_id: str, **values: Any) -> ContainerRecord:
    """Change columns of one container; return the new record."""
    columns = []
    args: list[Any] = []
    for key, value in values.items():
        columns.append(f"{key} = ?")
        args.append(_column_value(key, value))
    conn.execute(f"UPDATE containers SET {', '.join(columns)} WHERE id = ?", (*args, container_id))
    return load(conn, container_id)


def claim_exit(
    conn: sqlite3.Connection,
    container_id: str,
    run_id: int,
    *,
    exit_code: int,
    finished_at: int,
    oom_killed: bool,
) -> ContainerRecord | None:
    """Mark run ``run_id`` exited, once: None if someone else already handled it.

    The exit stays :data:`SETTLING` until :func:`finish_step` says its clean-up is done.
    """
    changed = conn.execute(
        "UPDATE containers SET state = ?, exit_code = ?, finished_at = ?, oom_killed = ?, "
        "pid = 0, conmon_pid = 0, unfinished = ? "
        "WHERE id = ? AND run_id = ? AND state IN (?, ?, ?)",
        (
            EXITED,
            exit_code,
            finished_at,
            int(oom_killed),
            SETTLING,
            container_id,
            run_id,
            *sorted(ALIVE),
        ),
    ).rowcount
    return load(conn, container_id) if changed else None


def begin_step(conn: sqlite3.Connection, container_id: str, step: str) -> bool:
    """Store ``step`` as under way unless another one is; whether it was stored."""
    return bool(
        conn.execute(
            "UPDATE containers SET unfinished = ? WHERE id = ? AND unfinished = ''",
            (step, container_id),
        ).rowcount
    )


def finish_step(conn: sqlite3.Connection, container_id: str, step: str) -> None:
    """``step`` is done, unless another one has replaced it meanwhile (or the
    container is gone)."""
    conn.execute(
        "UPDATE containers SET unfinished = '' WHERE id = ? AND unfinished = ?",
        (container_id, step),
    )


def load(conn: sqlite3.Connection, container_id: str) -> ContainerRecord:
    """One container by full ID."""
    row = conn.execute("SELECT * FROM containers WHERE id = ?", (container_id,)).fetchone()
    if row is None:
        raise NoSuchContainer(f"no container with ID {container_id!r} found: no such container")
    return _record(row)


def load_some(conn: sqlite3.Connection, container_ids: list[str]) -> list[ContainerRecord]:
    """Those of ``container_ids`` that exist, oldest first, in one query (the IDs travel as
    one JSON parameter, so their number is not bound by SQLite's variable limit)."""
    query = "SELECT * FROM containers WHERE id IN (SELECT value FROM json_each(?)) ORDER BY created"
    return [_record(row) for row in conn.execute(query, (json.dumps(container_ids),))]


def load_all(conn: sqlite3.Connection) -> list[ContainerRecord]:
    """Every container, oldest first (one query; unchanged rows are not decoded again)."""
    found = [_record(row) for row in conn.execute("SELECT * FROM containers ORDER BY created")]
    _decoded.keep_only({record.id for record in found})
    return found


def delete(conn: sqlite3.Connection, container_id: str) -> list[str]:
    """Forget a container, and every volume hold it still has (a clean-up cut short
    leaves one): a removed container holds nothing, so ``rm -v`` in the same
    transaction takes its anonymous volumes.  Returns the volumes it still held."""
    released = volume_rows.drop_holder(conn, container_id)
    conn.execute("DELETE FROM containers WHERE id = ?", (container_id,))
    _decoded.forget(container_id)
    return released


def rename(conn: sqlite3.Connection, container_id: str, name: str) -> ContainerRecord:
    """Give a container a new (free) name."""
    taken = conn.execute(
        "SELECT id FROM containers WHERE name = ? AND id != ?", (name, container_id)
    ).fetchone()
    if taken:
        raise Conflict(
            f"error when allocating new name: name {name!r} is in use by container {taken[0]}",
            cause="name is already in use",
        )
    return update(conn, container_id, name=name)


def resolve(conn: sqlite3.Connection, text: str) -> str | None:
    """A container ID from a full ID, a name, or a unique ID prefix."""
    text = text.removeprefix("/")
    row = conn.execute(
        "SELECT id FROM containers WHERE id = ? OR name = ?", (text, text)
    ).fetchone()
    if row is not None:
        return str(row[0])
    if not text or any(c not in "0123456789abcdef" for c in text):
        return None
    found = ids_with_prefix(conn, "containers", text)
    if len(found) > 1:
        raise Conflict(
            f"{text}: more than one container has an ID starting with {text!r}",
            cause="ambiguous container ID",
        )
    return found[0] if found else None


def resolve_record(conn: sqlite3.Connection, text: str) -> ContainerRecord | None:
    """:func:`resolve` and :func:`load` in one trip to the database thread (every
    request naming a container makes it)."""
    found = resolve(conn, text)
    return None if found is None else load(conn, found)


def using_image(conn: sqlite3.Connection, image_id: str) -> list[str]:
    """Containers created from an image."""
    return [
        row[0] for row in conn.execute("SELECT id FROM containers WHERE image_id = ?", (image_id,))
    ]


def name_taken(conn: sqlite3.Connection, name: str) -> bool:
    """Whether a container has this name."""
    return conn.execute("SELECT 1 FROM containers WHERE name = ?", (name,)).fetchone() is not None


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Containers per state."""
    return {
        row[0]: row[1]
        for row in conn.execute("SELECT state, count(*) FROM containers GROUP BY state")
    }


def with_state(record: ContainerRecord, **values: Any) -> ContainerRecord:
    """A copy with changed fields (for in-memory use before a write)."""
    return evolve(record, **values)
