"""Manifest list records in the state database (blocking: run on the DB executor).

A manifest list (``podman manifest create``) is a name, an ID and an ordered
list of entries: each the descriptor of an image manifest (digest, media
type, size), its platform and annotations, and where the manifest comes from
(a local image, or a registry repository) so a push can copy it.  Lists live in
their own table rather than among images: they have no config and no layers.
"""

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from podapi.engine.state.database import ids_with_prefix

#: ``ManifestEntry.source`` prefixes.
LOCAL = "containers-storage:"
REMOTE = "docker://"


@frozen
class ManifestEntry:
    """One instance of a list.

    :ivar platform: an OCI platform object (``architecture``, ``os``, ``variant``,
        ``os.version``, ``os.features``, ``features``).
    :ivar source: ``containers-storage:<image id>`` or ``docker://<repository>``.
    """

    digest: str
    media_type: str
    size: int
    platform: Mapping[str, Any] = field(factory=dict, hash=False)
    annotations: Mapping[str, str] = field(factory=dict, hash=False)
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "digest": self.digest,
            "mediaType": self.media_type,
            "size": self.size,
            "platform": dict(self.platform),
            "annotations": dict(self.annotations),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ManifestEntry":
        """Read the stored form back."""
        return cls(
            str(data["digest"]),
            str(data["mediaType"]),
            int(data["size"]),
            dict(data.get("platform") or {}),
            dict(data.get("annotations") or {}),
            str(data.get("source") or ""),
        )


@frozen
class ManifestListRecord:
    """A manifest list as stored."""

    id: str
    name: str
    created: int
    entries: tuple[ManifestEntry, ...]
    annotations: Mapping[str, str] = field(factory=dict, hash=False)


def _record(row: sqlite3.Row) -> ManifestListRecord:
    return ManifestListRecord(
        id=row["id"],
        name=row["name"],
        created=row["created"],
        entries=tuple(ManifestEntry.from_json(e) for e in json.loads(row["entries"])),
        annotations=json.loads(row["annotations"]),
    )


def insert_list(conn: sqlite3.Connection, record: ManifestListRecord) -> None:
    """Store a new list (the caller checked the name is free)."""
    conn.execute(
        "INSERT INTO manifest_lists (id, name, created, entries, annotations) "
        "VALUES (?, ?, ?, ?, ?)",
        (
            record.id,
            record.name,
            record.created,
            json.dumps([e.to_json() for e in record.entries]),
            json.dumps(dict(record.annotations)),
        ),
    )


def update_entries(
    conn: sqlite3.Connection, list_id: str, entries: tuple[ManifestEntry, ...]
) -> None:
    """Replace a list's entries."""
    conn.execute(
        "UPDATE manifest_lists SET entries = ? WHERE id = ?",
        (json.dumps([e.to_json() for e in entries]), list_id),
    )


def delete_list(conn: sqlite3.Connection, list_id: str) -> None:
    """Forget a list."""
    conn.execute("DELETE FROM manifest_lists WHERE id = ?", (list_id,))


def load_lists(conn: sqlite3.Connection) -> list[ManifestListRecord]:
    """Every list, oldest first."""
    rows = conn.execute("SELECT * FROM manifest_lists ORDER BY created, id").fetchall()
    return [_record(row) for row in rows]


def find_list(
    conn: sqlite3.Connection, names: tuple[str, ...], text: str
) -> ManifestListRecord | None:
    """The list named by one of ``names`` (normalised candidates), its full ID, or an
    unambiguous ID prefix ``text``."""
    for name in names:
        row = conn.execute("SELECT * FROM manifest_lists WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return _record(row)
    if text and all(c in "0123456789abcdef" for c in text.removeprefix("sha256:")):
        ids = ids_with_prefix(conn, "manifest_lists", text.removeprefix("sha256:"))
        if len(ids) == 1:
            row = conn.execute("SELECT * FROM manifest_lists WHERE id = ?", (ids[0],)).fetchone()
            return _record(row)
    return None
