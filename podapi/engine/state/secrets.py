"""Secret rows in the state database (blocking: run on the DB executor).

Only metadata lives here (name, ID, driver, options, labels, times); the data
is the driver's, in files under ``--root`` (``engine/secrets.py``).
``secret_users`` says which containers' configuration takes a secret (written
in the container's create transaction, gone with the container), so removing
a secret in use is refused in the same transaction that would forget it.
Users are kept by secret *name*: ``secret create --replace`` gives the secret
a new ID and the containers using it get the new data at their next start.
"""

import json
import sqlite3
from collections.abc import Iterable, Mapping

from attrs import field, frozen

from podapi.engine.state.database import ids_with_prefix
from podapi.errors import Conflict, InvalidArgument, NotFound

#: containers/common ``secretIDLength``: IDs are 25 hex digits.
ID_LENGTH = 25


class NoSuchSecret(NotFound):
    """containers/common ``ErrNoSuchSecret`` (404)."""

    cause = "no such secret"


@frozen
class SecretRecord:
    """A secret's metadata (never its data).

    :ivar created: nanoseconds since the epoch; kept by ``--replace``.
    :ivar updated: nanoseconds since the epoch of the last create or replace.
    """

    id: str
    name: str
    driver: str
    created: int
    updated: int
    labels: Mapping[str, str] = field(factory=dict)
    options: Mapping[str, str] = field(factory=dict)


def no_such_secret(name_or_id: str) -> NoSuchSecret:
    """containers/common's not-found message."""
    return NoSuchSecret(f'no secret with name or id "{name_or_id}": no such secret')


def _record(row: sqlite3.Row) -> SecretRecord:
    return SecretRecord(
        id=row["id"],
        name=row["name"],
        driver=row["driver"],
        created=row["created"],
        updated=row["updated"],
        labels=json.loads(row["labels"]),
        options=json.loads(row["options"]),
    )


def find(conn: sqlite3.Connection, name_or_id: str) -> SecretRecord | None:
    """By exact name, full ID, or unique ID prefix (containers/common's order); None if none.

    :raises InvalidArgument: the prefix matches more than one ID (common's
        ``errAmbiguous``; Podman answers 500).
    """
    row = conn.execute(
        "SELECT * FROM secrets WHERE name = ? OR id = ? ORDER BY name = ? DESC LIMIT 1",
        (name_or_id, name_or_id, name_or_id),
    ).fetchone()
    if row is not None:
        return _record(row)
    if not name_or_id or len(name_or_id) > ID_LENGTH:
        return None
    found = ids_with_prefix(conn, "secrets", name_or_id)
    if len(found) > 1:
        raise InvalidArgument(
            f"more than one result secret with prefix {name_or_id}: secret is ambiguous",
            cause="secret is ambiguous",
        )
    if not found:
        return None
    return _record(conn.execute("SELECT * FROM secrets WHERE id = ?", (found[0],)).fetchone())


def load(conn: sqlite3.Connection, name_or_id: str) -> SecretRecord:
    """As :func:`find`; 404 when nothing matches."""
    found = find(conn, name_or_id)
    if found is None:
        raise no_such_secret(name_or_id)
    return found


def find_by_name(conn: sqlite3.Connection, name: str) -> SecretRecord | None:
    """By exact name only (what create and ``--replace`` look at)."""
    row = conn.execute("SELECT * FROM secrets WHERE name = ?", (name,)).fetchone()
    return None if row is None else _record(row)


def all_secrets(conn: sqlite3.Connection) -> list[SecretRecord]:
    """Every secret, oldest first."""
    return [_record(r) for r in conn.execute("SELECT * FROM secrets ORDER BY created, name")]


def name_in_use(name: str) -> Conflict:
    """containers/common ``errSecretNameInUse`` (Podman's compat create maps it to 409)."""
    return Conflict(f"{name}: secret name in use", cause="secret name in use")


def insert(conn: sqlite3.Connection, record: SecretRecord, *, replace: bool) -> SecretRecord | None:
    """Store a new secret; with ``replace`` an existing one of that name gives way (its
    creation time and users stay).  Returns the record replaced, if any."""
    old = find_by_name(conn, record.name)
    if old is not None and not replace:
        raise name_in_use(record.name)
    if old is not None:
        conn.execute("DELETE FROM secrets WHERE id = ?", (old.id,))
    conn.execute(
        "INSERT INTO secrets (id, name, driver, created, updated, labels, options) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            record.id,
            record.name,
            record.driver,
            old.created if old is not None else record.created,
            record.updated,
            json.dumps(dict(record.labels)),
            json.dumps(dict(record.options)),
        ),
    )
    return old


def users(conn: sqlite3.Connection, name: str) -> list[str]:
    """IDs of the containers whose configuration takes the secret ``name``."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT container_id FROM secret_users WHERE secret = ? ORDER BY container_id",
            (name,),
        )
    ]


def delete(conn: sqlite3.Connection, name_or_id: str) -> SecretRecord:
    """Forget a secret no container uses; 404 unknown, 409 in use (Podman's ``SecretInUse``)."""
    found = load(conn, name_or_id)
    using = users(conn, found.name)
    if using:
        raise Conflict(
            f"secret {found.name} is in use by containers: {', '.join(using)}: secret is in use",
            cause="secret is in use",
        )
    conn.execute("DELETE FROM secrets WHERE id = ?", (found.id,))
    return found


def resolve_names(conn: sqlite3.Connection, names_or_ids: Iterable[str]) -> dict[str, str]:
    """What a container asks for (names, IDs, ID prefixes) mapped to secret names; 404
    for any unknown (Podman resolves them at create too)."""
    return {given: load(conn, given).name for given in dict.fromkeys(names_or_ids)}


def add_users(conn: sqlite3.Connection, container_id: str, names: Iterable[str]) -> None:
    """Record that a container takes these secrets (by name; they must exist)."""
    for name in dict.fromkeys(names):
        if find_by_name(conn, name) is None:
            raise no_such_secret(name)
        conn.execute(
            "INSERT OR IGNORE INTO secret_users (secret, container_id) VALUES (?, ?)",
            (name, container_id),
        )
