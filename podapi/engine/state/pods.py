"""Pod rows in the state database (blocking: run on the DB executor).

A pod is its options and its infra container's ID; the containers in a pod
name it in their spec, so they are found through the container rows.
"""

import json
import sqlite3
from collections.abc import Callable

from attrs import evolve, frozen

from podapi.engine.podspec import PodSpec, pod_spec_from_json, pod_spec_to_json
from podapi.engine.state.database import ids_with_prefix
from podapi.errors import Conflict, NotFound


class NoSuchPod(NotFound):
    """Podman's ``ErrNoSuchPod`` (404)."""

    cause = "no such pod"


@frozen
class PodRecord:
    """A pod as stored."""

    id: str
    name: str
    created: int
    spec: PodSpec
    infra_id: str = ""


def _record(row: sqlite3.Row) -> PodRecord:
    return PodRecord(
        id=row["id"],
        name=row["name"],
        created=row["created"],
        spec=pod_spec_from_json(json.loads(row["spec"])),
        infra_id=row["infra_id"],
    )


def name_taken(conn: sqlite3.Connection, name: str) -> bool:
    """Whether a pod has this name."""
    return conn.execute("SELECT 1 FROM pods WHERE name = ?", (name,)).fetchone() is not None


def insert(
    conn: sqlite3.Connection,
    record: PodRecord,
    name_for: Callable[[Callable[[str], bool]], str] | None = None,
) -> PodRecord:
    """Store a new pod; ``Conflict`` when the name is taken (Podman's ``ErrPodExists``)."""
    if name_for is not None:
        record = evolve(record, name=name_for(lambda name: name_taken(conn, name)))
    if name_taken(conn, record.name):
        raise Conflict(
            f'failed to make pod: adding pod to state: name "{record.name}" is in use: '
            "pod already exists",
            cause="pod already exists",
        )
    conn.execute(
        "INSERT INTO pods (id, name, created, spec, infra_id) VALUES (?, ?, ?, ?, ?)",
        (
            record.id,
            record.name,
            record.created,
            json.dumps(pod_spec_to_json(record.spec)),
            record.infra_id,
        ),
    )
    return record


def set_infra(conn: sqlite3.Connection, pod_id: str, infra_id: str) -> None:
    """Record the pod's infra container."""
    conn.execute("UPDATE pods SET infra_id = ? WHERE id = ?", (infra_id, pod_id))


def delete(conn: sqlite3.Connection, pod_id: str) -> None:
    """Forget a pod."""
    conn.execute("DELETE FROM pods WHERE id = ?", (pod_id,))


def load(conn: sqlite3.Connection, pod_id: str) -> PodRecord:
    """A pod by full ID."""
    row = conn.execute("SELECT * FROM pods WHERE id = ?", (pod_id,)).fetchone()
    if row is None:
        raise NoSuchPod(f"no pod with ID {pod_id} found in database: no such pod")
    return _record(row)


def load_all(conn: sqlite3.Connection) -> list[PodRecord]:
    """Every pod, oldest first."""
    return [_record(r) for r in conn.execute("SELECT * FROM pods ORDER BY created, id")]


def resolve(conn: sqlite3.Connection, text: str) -> PodRecord | None:
    """By name, full ID or unique ID prefix."""
    row = conn.execute("SELECT * FROM pods WHERE id = ? OR name = ?", (text, text)).fetchone()
    if row is not None:
        return _record(row)
    if not text or any(c not in "0123456789abcdef" for c in text):
        return None
    found = ids_with_prefix(conn, "pods", text)
    if len(found) > 1:
        raise Conflict(
            f"more than one result for pod ID {text}", cause="more than one result for ID"
        )
    return load(conn, found[0]) if found else None
