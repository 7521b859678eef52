"""Rows of the build cache: which image a build step made, by parent image and step key."""

import sqlite3

from attrs import frozen


@frozen
class CacheEntry:
    """One cached step: the image it made, its parent, when made and last used (ns)."""

    image_id: str
    parent: str
    created: int
    last_used: int


def find(conn: sqlite3.Connection, parent: str, key: str) -> str | None:
    """The newest image made by the step ``key`` on ``parent``, if any."""
    row = conn.execute(
        "SELECT image_id FROM build_cache WHERE parent = ? AND key = ? "
        "ORDER BY created DESC LIMIT 1",
        (parent, key),
    ).fetchone()
    return row[0] if row else None


def record(conn: sqlite3.Connection, image_id: str, parent: str, key: str, now: int) -> None:
    """Remember that the step ``key`` on ``parent`` made ``image_id``."""
    conn.execute(
        "INSERT OR REPLACE INTO build_cache (image_id, parent, key, created, last_used) "
        "VALUES (?, ?, ?, ?, ?)",
        (image_id, parent, key, now, now),
    )


def touch(conn: sqlite3.Connection, image_id: str, now: int) -> None:
    """Mark a cache entry used now (a hit)."""
    conn.execute("UPDATE build_cache SET last_used = ? WHERE image_id = ?", (now, image_id))


def mark_result(conn: sqlite3.Connection, image_id: str) -> None:
    """Mark ``image_id`` as what a build answered with (not only a step's image)."""
    conn.execute("UPDATE build_cache SET result = 1 WHERE image_id = ?", (image_id,))


def intermediate_ids(conn: sqlite3.Connection) -> set[str]:
    """The cache images no build answered with: its steps' images only."""
    return {row[0] for row in conn.execute("SELECT image_id FROM build_cache WHERE result = 0")}


def entries(conn: sqlite3.Connection) -> list[CacheEntry]:
    """Every cache entry, least recently used first."""
    rows = conn.execute(
        "SELECT image_id, parent, created, last_used FROM build_cache ORDER BY last_used"
    ).fetchall()
    return [CacheEntry(*row) for row in rows]


def detach_built(conn: sqlite3.Connection) -> None:
    """Forget which cache images the named images were built on (``builder prune --all``
    then removes the whole cache below them; they keep their layers)."""
    conn.execute(
        "UPDATE images SET parent = '' WHERE parent IN (SELECT image_id FROM build_cache) "
        "AND id IN (SELECT image_id FROM image_names)"
    )
