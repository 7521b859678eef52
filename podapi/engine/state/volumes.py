"""Volume rows in the state database (blocking: run on the DB executor).

A volume is a row in ``volumes``; ``volume_users`` says which containers'
configuration mounts it (written in the container's create transaction and
gone with the container, so "in use" and "dangling" are queries), and
``volume_mounts`` who holds it mounted right now (a running container, an
export), so a volume with driver options is mounted once for all of them.
A container's holds go with its row too (:func:`drop_holder` in its delete
transaction), and one cannot be added for a container that is gone.
"""

import json
import sqlite3
from collections.abc import Iterable, Mapping

from attrs import field, frozen

from podapi.errors import Conflict, NoSuchContainer, NoSuchVolume


@frozen
class VolumeRecord:
    """A volume as stored.

    :ivar options: the local driver's options (``type``, ``o``, ``device``).
    :ivar anonymous: made for one container (image ``VOLUME``, ``-v /path``);
        ``docker rm -v`` removes it with the container.
    :ivar copied_up: image content was copied into it already (Podman's
        ``NeedsCopyUp`` is the opposite).
    """

    name: str
    driver: str
    created: int
    labels: Mapping[str, str] = field(factory=dict)
    options: Mapping[str, str] = field(factory=dict)
    anonymous: bool = False
    copied_up: bool = False


@frozen
class VolumeUsage:
    """A volume with the containers that use it and the holders of its mount."""

    record: VolumeRecord
    users: tuple[str, ...] = ()
    holders: tuple[str, ...] = ()

    @property
    def dangling(self) -> bool:
        """No container uses it."""
        return not self.users


def no_such_volume(name: str) -> NoSuchVolume:
    """Podman's 404 (``utils.VolumeNotFound``)."""
    return NoSuchVolume(f'no volume with name "{name}" found: no such volume')


def _record(row: sqlite3.Row) -> VolumeRecord:
    return VolumeRecord(
        name=row["name"],
        driver=row["driver"],
        created=row["created"],
        labels=json.loads(row["labels"]),
        options=json.loads(row["options"]),
        anonymous=bool(row["anonymous"]),
        copied_up=bool(row["copied_up"]),
    )


def insert(conn: sqlite3.Connection, record: VolumeRecord) -> VolumeRecord:
    """Store a new volume; ``Conflict`` when the name is taken."""
    if find(conn, record.name) is not None:
        raise Conflict(
            f"volume with name {record.name} already exists: volume already exists",
            cause="volume already exists",
        )
    conn.execute(
        "INSERT INTO volumes (name, driver, created, labels, options, anonymous) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            record.name,
            record.driver,
            record.created,
            json.dumps(dict(record.labels)),
            json.dumps(dict(record.options)),
            int(record.anonymous),
        ),
    )
    return record


def find(conn: sqlite3.Connection, name: str) -> VolumeRecord | None:
    """A volume by name, or None."""
    row = conn.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
    return None if row is None else _record(row)


def load(conn: sqlite3.Connection, name: str) -> VolumeRecord:
    """A volume by name; 404 otherwise."""
    found = find(conn, name)
    if found is None:
        raise no_such_volume(name)
    return found


def _grouped(conn: sqlite3.Connection, query: str, *args: str) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for volume, other in conn.execute(query, args):
        grouped.setdefault(volume, []).append(other)
    return grouped


def usage_all(conn: sqlite3.Connection) -> list[VolumeUsage]:
    """Every volume with its users and holders, oldest first."""
    users = _grouped(conn, "SELECT volume, container_id FROM volume_users ORDER BY container_id")
    holders = _grouped(conn, "SELECT volume, holder FROM volume_mounts ORDER BY holder")
    return [
        VolumeUsage(
            _record(row), tuple(users.get(row["name"], ())), tuple(holders.get(row["name"], ()))
        )
        for row in conn.execute("SELECT * FROM volumes ORDER BY created, name")
    ]


def usage(conn: sqlite3.Connection, name: str) -> VolumeUsage:
    """One volume with its users and holders; 404 otherwise."""
    record = load(conn, name)
    users = _grouped(conn, "SELECT volume, container_id FROM volume_users WHERE volume = ?", name)
    holders = _grouped(conn, "SELECT volume, holder FROM volume_mounts WHERE volume = ?", name)
    return VolumeUsage(record, tuple(users.get(name, ())), tuple(holders.get(name, ())))


def delete(conn: sqlite3.Connection, name: str) -> VolumeRecord:
    """Forget a volume nobody uses or holds; Docker's 409 otherwise."""
    found = usage(conn, name)
    busy = found.users or found.holders
    if busy:
        raise Conflict(
            f"remove {name}: volume is in use - [{', '.join(busy)}]",
            cause="volume is being used",
        )
    conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
    return found.record


def delete_unused_anonymous(conn: sqlite3.Connection, names: Iterable[str]) -> list[str]:
    """Forget those of ``names`` that are anonymous and nobody uses or holds; their names."""
    deleted = []
    for name in dict.fromkeys(names):
        found = find(conn, name)
        if found is None or not found.anonymous:
            continue
        in_use = usage(conn, name)
        if not in_use.users and not in_use.holders:
            conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
            deleted.append(name)
    return deleted


def add_users(conn: sqlite3.Connection, container_id: str, names: Iterable[str]) -> None:
    """Record that a container's configuration mounts these volumes (they must exist)."""
    for name in dict.fromkeys(names):
        load(conn, name)
        conn.execute(
            "INSERT OR IGNORE INTO volume_users (volume, container_id) VALUES (?, ?)",
            (name, container_id),
        )


def mark_copied_up(conn: sqlite3.Connection, name: str) -> None:
    """Image content was copied into the volume: never again."""
    conn.execute("UPDATE volumes SET copied_up = 1 WHERE name = ?", (name,))


def hold(conn: sqlite3.Connection, name: str, holder: str, *, container: bool = False) -> int:
    """Add ``holder`` to the volume's mount holders; how many hold it now.

    :param container: ``holder`` is a container's ID: it must still exist
        (``NoSuchContainer`` otherwise), so a start or copy that comes after
        the container's removal never leaves a hold nothing would release.
    """
    load(conn, name)
    if (
        container
        and not conn.execute("SELECT 1 FROM containers WHERE id = ?", (holder,)).fetchone()
    ):
        raise NoSuchContainer(f"no container with ID {holder!r} found: no such container")
    conn.execute(
        "INSERT OR IGNORE INTO volume_mounts (volume, holder) VALUES (?, ?)", (name, holder)
    )
    return _held(conn, name)


def unhold(conn: sqlite3.Connection, name: str, holder: str) -> tuple[bool, int]:
    """Drop ``holder``: whether it held the volume, and how many still do."""
    dropped = conn.execute(
        "DELETE FROM volume_mounts WHERE volume = ? AND holder = ?", (name, holder)
    ).rowcount
    return bool(dropped), _held(conn, name)


def drop_holder(conn: sqlite3.Connection, holder: str) -> list[str]:
    """Drop every hold of ``holder`` (a container being removed); the volumes it held."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT volume FROM volume_mounts WHERE holder = ? ORDER BY volume", (holder,)
        )
    ]
    conn.execute("DELETE FROM volume_mounts WHERE holder = ?", (holder,))
    return names


def _held(conn: sqlite3.Connection, name: str) -> int:
    return int(
        conn.execute("SELECT count(*) FROM volume_mounts WHERE volume = ?", (name,)).fetchone()[0]
    )
