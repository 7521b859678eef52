"""The SQLite state database: one connection, one thread, one transaction per change.

The database lives in ``--root`` and outlives the server.  It runs in WAL mode
so readers in other processes (``podapi.cleanup``) never block on writers, and
``busy_timeout`` lets such a process wait for the server's transaction rather
than fail.  Every call runs on a serial executor (a one-thread pool), so the
reactor never waits on the disk and the connection is never shared.

Schema changes are numbered migrations applied in order at open; the version
reached is kept in ``schema_version``.
"""

import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from podapi.threads import Blocking

T = TypeVar("T")

#: Migration N (1-based) brings the schema from version N-1 to N.  Append only.
MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: the image store (podapi/engine/state/images.py).
    """
    CREATE TABLE layers (
        diff_id TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        created INTEGER NOT NULL
    );
    -- Blobs known to expand to a diff ID (as pulled, loaded or compressed for a
    -- push).  Kept after the layer goes, like Docker's distribution metadata, so
    -- a later push can reuse a digest the registry already has.
    CREATE TABLE layer_blobs (
        digest TEXT PRIMARY KEY,
        diff_id TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        source TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX layer_blobs_diff ON layer_blobs(diff_id);
    CREATE TABLE images (
        id TEXT PRIMARY KEY,
        manifest_digest TEXT NOT NULL,
        manifest_media_type TEXT NOT NULL,
        created INTEGER NOT NULL,
        added INTEGER NOT NULL,
        size INTEGER NOT NULL,
        labels TEXT NOT NULL,
        architecture TEXT NOT NULL,
        os TEXT NOT NULL,
        parent TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE image_layers (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        diff_id TEXT NOT NULL REFERENCES layers(diff_id),
        PRIMARY KEY (image_id, position)
    );
    CREATE INDEX image_layers_diff ON image_layers(diff_id);
    CREATE TABLE image_names (
        name TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        added INTEGER NOT NULL
    );
    CREATE INDEX image_names_image ON image_names(image_id);
    CREATE TABLE image_digests (
        repository TEXT NOT NULL,
        digest TEXT NOT NULL,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        PRIMARY KEY (repository, digest)
    );
    CREATE TABLE image_names_history (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        added INTEGER NOT NULL,
        PRIMARY KEY (image_id, name)
    );
    """,
    # 3: containers (podapi/engine/state/containers.py).
    """
    CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        image_id TEXT NOT NULL REFERENCES images(id),
        image_name TEXT NOT NULL,
        created INTEGER NOT NULL,
        spec TEXT NOT NULL,
        run TEXT NOT NULL,
        state TEXT NOT NULL,
        pid INTEGER NOT NULL DEFAULT 0,
        conmon_pid INTEGER NOT NULL DEFAULT 0,
        exit_code INTEGER NOT NULL DEFAULT 0,
        started_at INTEGER NOT NULL DEFAULT 0,
        finished_at INTEGER NOT NULL DEFAULT 0,
        restart_count INTEGER NOT NULL DEFAULT 0,
        run_id INTEGER NOT NULL DEFAULT 0,
        oom_killed INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        stopped_by_user INTEGER NOT NULL DEFAULT 0,
        health_status TEXT NOT NULL DEFAULT '',
        health_failing INTEGER NOT NULL DEFAULT 0,
        health_log TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX containers_image ON containers(image_id);
    """,
    # 4: exec sessions (podapi/engine/state/execs.py); they go with their container.
    """
    CREATE TABLE execs (
        id TEXT PRIMARY KEY,
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        spec TEXT NOT NULL,
        created INTEGER NOT NULL,
        state TEXT NOT NULL,
        pid INTEGER NOT NULL DEFAULT 0,
        exit_code INTEGER
    );
    CREATE INDEX execs_container ON execs(container_id);
    """,
    # 5: volumes (podapi/engine/state/volumes.py).  volume_users: the containers whose
    # configuration mounts a volume ("in use", "dangling"); volume_mounts: who holds
    # it mounted right now (running containers, exports), whatever its driver.
    """
    CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        driver TEXT NOT NULL,
        created INTEGER NOT NULL,
        labels TEXT NOT NULL,
        options TEXT NOT NULL,
        anonymous INTEGER NOT NULL DEFAULT 0,
        copied_up INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE volume_users (
        volume TEXT NOT NULL REFERENCES volumes(name),
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        PRIMARY KEY (volume, container_id)
    );
    CREATE INDEX volume_users_container ON volume_users(container_id);
    CREATE TABLE volume_mounts (
        volume TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
        holder TEXT NOT NULL,
        PRIMARY KEY (volume, holder)
    );
    """,
    # 6: networks (podapi/engine/state/networks.py): definitions, addresses in use, and
    # what netavark set up for each running container.
    """
    CREATE TABLE networks (
        name TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        definition TEXT NOT NULL
    );
    CREATE TABLE network_addresses (
        network TEXT NOT NULL,
        address TEXT NOT NULL,
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        PRIMARY KEY (network, address)
    );
    CREATE INDEX network_addresses_container ON network_addresses(container_id);
    ALTER TABLE containers ADD COLUMN network_status TEXT NOT NULL DEFAULT '{}';
    """,
    # 7: secrets' metadata (podapi/engine/state/secrets.py; the data is the file driver's,
    # never in SQLite) and the containers that take each one, by secret name.
    """
    CREATE TABLE secrets (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        driver TEXT NOT NULL,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        labels TEXT NOT NULL,
        options TEXT NOT NULL
    );
    CREATE TABLE secret_users (
        secret TEXT NOT NULL,
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        PRIMARY KEY (secret, container_id)
    );
    CREATE INDEX secret_users_container ON secret_users(container_id);
    """,
    # 8: manifest lists (podapi/engine/state/manifests.py): one row per list, its
    # entries (descriptors, platforms and where each came from) as JSON.
    """
    CREATE TABLE manifest_lists (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL,
        entries TEXT NOT NULL,
        annotations TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # 9: pods (podapi/engine/state/pods.py): the pod's options as JSON and its infra
    # container; the containers in a pod name it in their spec (``pod``).
    """
    CREATE TABLE pods (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL,
        spec TEXT NOT NULL,
        infra_id TEXT NOT NULL DEFAULT ''
    );
    """,
    # 10: the step of a container under way that a crash could cut short (``start``,
    # ``exit``, ``commit``: podapi/engine/state/containers.py), for reconcile to finish.
    """
    ALTER TABLE containers ADD COLUMN unfinished TEXT NOT NULL DEFAULT '';
    """,
    # 11: the build cache (podapi/engine/state/buildcache.py): the images a build made
    # per step, found again by their parent and the step's key; gone with the image.
    """
    CREATE TABLE build_cache (
        image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
        parent TEXT NOT NULL,
        key TEXT NOT NULL,
        created INTEGER NOT NULL,
        last_used INTEGER NOT NULL
    );
    CREATE INDEX build_cache_step ON build_cache (parent, key);
    """,
    # 12: which cache images a build answered with (shown as the user's images once
    # untagged: Docker's dangling images), as against steps' intermediate images.
    """
    ALTER TABLE build_cache ADD COLUMN result INTEGER NOT NULL DEFAULT 0;
    """,
)


class State:
    """Async access to the state database.

    :param path: the database file.
    :param blocking: a serial executor (one thread) the connection lives on.
    """

    def __init__(self, path: str, blocking: Blocking) -> None:
        self._path = path
        self._blocking = blocking
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> int:
        """Open (creating if needed) and migrate; return the schema version."""
        return await self._blocking(self._open)

    def _open(self) -> int:
        conn = sqlite3.connect(
            self._path, timeout=30, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        self._conn = conn
        return migrate(conn)

    async def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._blocking(conn.close)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` for reading."""
        return await self._blocking(fn, self._connection())

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` inside one ``BEGIN IMMEDIATE`` transaction."""
        return await self._blocking(transaction, self._connection(), fn)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("state database is not open")
        return self._conn


def meta_value(conn: sqlite3.Connection, key: str, make: Callable[[], str]) -> str:
    """The value kept under ``key`` in ``meta``; stored as ``make()`` the first time
    (call it in a write transaction)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is not None:
        return str(row[0])
    value = make()
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
    return value


def ids_with_prefix(conn: sqlite3.Connection, table: str, prefix: str) -> list[str]:
    """Up to two IDs of ``table`` (``containers``, ``images``, ``secrets``) starting with
    ``prefix``: one is a match, two make it ambiguous (the ``id`` index serves the range)."""
    rows = conn.execute(
        f"SELECT id FROM {table} WHERE id >= ? AND id < ? LIMIT 2",
        (prefix, prefix + "g"),
    ).fetchall()
    return [row[0] for row in rows]


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` in a write transaction, committing on success (blocking)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Apply the migrations this database has not seen; return the new version."""

    def apply(conn: sqlite3.Connection) -> int:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if version > len(migrations):
            raise RuntimeError(
                f"state database schema {version} is newer than this podapi ({len(migrations)})"
            )
        for script in migrations[version:]:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
        if row is None:
            conn.execute("INSERT INTO schema_version VALUES (?)", (len(migrations),))
        else:
            conn.execute("UPDATE schema_version SET version = ?", (len(migrations),))
        return len(migrations)

    return transaction(conn, apply)
