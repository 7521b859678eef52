"""Image and layer records in the state database (blocking: run on the DB executor).

An image is its config blob (the ID is the config's sha256), a manifest blob,
an ordered list of layers (by diff ID) and any number of names and repository
digests.  Layers are shared between images; a layer row lives as long as an
image uses it.  Every change here is one transaction, so an image is either
fully visible or not at all.
"""

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence

from attrs import field, frozen

from podapi.engine.state.database import ids_with_prefix
from podapi.errors import Conflict, InvalidArgument, NoSuchImage
from podapi.storage import reference
from podapi.storage.layers import GZIP_MEDIA


@frozen
class ImageRecord:
    """An image as stored."""

    id: str
    names: tuple[str, ...]
    digests: tuple[str, ...]
    manifest_digest: str
    manifest_media_type: str
    created: int
    added: int
    size: int
    labels: Mapping[str, str]
    architecture: str
    os: str
    parent: str
    layers: tuple[str, ...]
    names_history: tuple[str, ...]

    @property
    def config_digest(self) -> str:
        """``sha256:<id>``: the digest of the config blob."""
        return "sha256:" + self.id

    @property
    def dangling(self) -> bool:
        """An image without names."""
        return not self.names


@frozen
class NewLayer:
    """A layer an image being stored uses, and the blob it came from."""

    diff_id: str
    size: int
    blob_digest: str
    blob_media_type: str
    blob_size: int
    source: str = ""


@frozen
class NewImage:
    """Everything needed to store an image in one transaction."""

    id: str
    manifest_digest: str
    manifest_media_type: str
    created: int
    size: int
    labels: Mapping[str, str]
    architecture: str
    os: str
    layers: tuple[NewLayer, ...]
    names: tuple[str, ...] = ()
    digests: tuple[tuple[str, str], ...] = ()
    parent: str = ""


@frozen
class Stored:
    """What storing an image changed: the record and names moved off other images."""

    image: ImageRecord
    created: bool
    moved: tuple[tuple[str, str], ...] = field(factory=tuple)


def load_images(conn: sqlite3.Connection, ids: Sequence[str] | None = None) -> list[ImageRecord]:
    """Every image (or the ones in ``ids``), oldest first, in a fixed number of queries."""
    args: tuple[str, ...]
    where, args = "", ()
    if ids is not None:
        if not ids:
            return []
        where = f"WHERE id IN ({','.join('?' * len(ids))})"
        args = tuple(ids)
    rows = conn.execute(f"SELECT * FROM images {where} ORDER BY added, id", args).fetchall()
    names: dict[str, list[str]] = {}
    for name, image_id in conn.execute("SELECT name, image_id FROM image_names ORDER BY added"):
        names.setdefault(image_id, []).append(name)
    digests: dict[str, list[str]] = {}
    for repo, digest, image_id in conn.execute(
        "SELECT repository, digest, image_id FROM image_digests ORDER BY repository"
    ):
        digests.setdefault(image_id, []).append(f"{repo}@{digest}")
    layers: dict[str, list[str]] = {}
    for image_id, diff_id in conn.execute(
        "SELECT image_id, diff_id FROM image_layers ORDER BY image_id, position"
    ):
        layers.setdefault(image_id, []).append(diff_id)
    history: dict[str, list[str]] = {}
    for image_id, name in conn.execute(
        "SELECT image_id, name FROM image_names_history ORDER BY added DESC"
    ):
        history.setdefault(image_id, []).append(name)
    return [
        ImageRecord(
            id=row["id"],
            names=tuple(names.get(row["id"], ())),
            digests=tuple(digests.get(row["id"], ())),
            manifest_digest=row["manifest_digest"],
            manifest_media_type=row["manifest_media_type"],
            created=row["created"],
            added=row["added"],
            size=row["size"],
            labels=json.loads(row["labels"]),
            architecture=row["architecture"],
            os=row["os"],
            parent=row["parent"],
            layers=tuple(layers.get(row["id"], ())),
            names_history=tuple(history.get(row["id"], ())),
        )
        for row in rows
    ]


def load_image(conn: sqlite3.Connection, image_id: str) -> ImageRecord:
    """One image by full ID."""
    found = load_images(conn, [image_id])
    if not found:
        raise NoSuchImage(f"No such image: {image_id}", cause="image not known")
    return found[0]


def known_layers(conn: sqlite3.Connection, diff_ids: Iterable[str]) -> set[str]:
    """Which of ``diff_ids`` are stored."""
    wanted = list(dict.fromkeys(diff_ids))
    if not wanted:
        return set()
    marks = ",".join("?" * len(wanted))
    rows = conn.execute(f"SELECT diff_id FROM layers WHERE diff_id IN ({marks})", wanted)
    return {row[0] for row in rows}


@frozen
class LayerBlob:
    """A blob known to expand to a layer, and the repository it was pulled from."""

    digest: str
    media_type: str
    size: int
    source: str = ""


def layer_blobs(conn: sqlite3.Connection, diff_id: str) -> list[LayerBlob]:
    """The blobs known to expand to ``diff_id``."""
    return [
        LayerBlob(row[0], row[1], row[2], row[3])
        for row in conn.execute(
            "SELECT digest, media_type, size, source FROM layer_blobs WHERE diff_id = ? "
            "ORDER BY media_type DESC",
            (diff_id,),
        )
    ]


def layer_size(conn: sqlite3.Connection, diff_id: str) -> int:
    """The uncompressed size of a stored layer."""
    row = conn.execute("SELECT size FROM layers WHERE diff_id = ?", (diff_id,)).fetchone()
    if row is None:
        raise NoSuchImage(f"layer {diff_id} not known")
    return int(row[0])


def _add_name(conn: sqlite3.Connection, image_id: str, name: str, now: int) -> str | None:
    """Point ``name`` at ``image_id``; return the image it was taken from, if any."""
    row = conn.execute("SELECT image_id FROM image_names WHERE name = ?", (name,)).fetchone()
    previous = row[0] if row else None
    if previous == image_id:
        return None
    conn.execute(
        "INSERT OR REPLACE INTO image_names (name, image_id, added) VALUES (?, ?, ?)",
        (name, image_id, now),
    )
    conn.execute(
        "INSERT OR REPLACE INTO image_names_history (image_id, name, added) VALUES (?, ?, ?)",
        (image_id, name, now),
    )
    return previous


def insert_image(conn: sqlite3.Connection, new: NewImage, now: int) -> Stored:
    """Store ``new`` (or add names to it if it exists); one transaction via ``State.write``."""
    exists = conn.execute("SELECT 1 FROM images WHERE id = ?", (new.id,)).fetchone() is not None
    if not exists:
        for layer in new.layers:
            record_layer(conn, layer, now)
        conn.execute(
            "INSERT INTO images (id, manifest_digest, manifest_media_type, created, added, size,"
            " labels, architecture, os, parent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new.id,
                new.manifest_digest,
                new.manifest_media_type,
                new.created,
                now,
                new.size,
                json.dumps(dict(new.labels)),
                new.architecture,
                new.os,
                new.parent,
            ),
        )
        conn.executemany(
            "INSERT INTO image_layers (image_id, position, diff_id) VALUES (?, ?, ?)",
            [(new.id, i, layer.diff_id) for i, layer in enumerate(new.layers)],
        )
    moved = []
    for name in new.names:
        previous = _add_name(conn, new.id, name, now)
        if previous is not None:
            moved.append((name, previous))
    conn.executemany(
        "INSERT OR REPLACE INTO image_digests (repository, digest, image_id) VALUES (?, ?, ?)",
        [(repo, digest, new.id) for repo, digest in new.digests],
    )
    return Stored(load_image(conn, new.id), created=not exists, moved=tuple(moved))


def add_digest(conn: sqlite3.Connection, image_id: str, repository: str, digest: str) -> None:
    """Record that ``repository@digest`` is this image (after a push)."""
    conn.execute(
        "INSERT OR REPLACE INTO image_digests (repository, digest, image_id) VALUES (?, ?, ?)",
        (repository, digest, image_id),
    )


def record_layer(conn: sqlite3.Connection, layer: NewLayer, now: int) -> None:
    """Remember an installed layer (once) and the blob it came from."""
    conn.execute(
        "INSERT OR IGNORE INTO layers (diff_id, size, created) VALUES (?, ?, ?)",
        (layer.diff_id, layer.size, now),
    )
    add_layer_blob(conn, layer)


def best_blob(conn: sqlite3.Connection, diff_id: str) -> tuple[str, str, int]:
    """``(digest, media type, size)`` a generated manifest names (uncompressed preferred)."""
    candidates = layer_blobs(conn, diff_id)
    if not candidates:
        raise NoSuchImage(f"layer {diff_id} not known", cause="layer not known")
    best = sorted(candidates, key=lambda b: b.media_type == GZIP_MEDIA)[0]
    return best.digest, best.media_type, best.size


def add_layer_blob(conn: sqlite3.Connection, layer: NewLayer) -> None:
    """Remember a blob of a layer (as pulled, loaded, or compressed for a push)."""
    conn.execute(
        "INSERT INTO layer_blobs (digest, diff_id, media_type, size, source) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO UPDATE SET "
        "source = CASE WHEN excluded.source != '' THEN excluded.source ELSE source END",
        (layer.blob_digest, layer.diff_id, layer.blob_media_type, layer.blob_size, layer.source),
    )


def tag(conn: sqlite3.Connection, image_id: str, name: str, now: int) -> str | None:
    """Add ``name`` to the image; return the image that lost the name, if any."""
    load_image(conn, image_id)
    return _add_name(conn, image_id, name, now)


def untag(conn: sqlite3.Connection, image_id: str, name: str) -> None:
    """Remove ``name`` from the image."""
    deleted = conn.execute(
        "DELETE FROM image_names WHERE name = ? AND image_id = ?", (name, image_id)
    ).rowcount
    if not deleted:
        raise NoSuchImage(f"{reference.docker_name(name)}: tag not known")


def delete_image(conn: sqlite3.Connection, image_id: str) -> None:
    """Remove an image row (names, digests and layer links go with it)."""
    conn.execute("DELETE FROM images WHERE id = ?", (image_id,))


def children(conn: sqlite3.Connection, image_id: str) -> list[str]:
    """Images whose parent is ``image_id``."""
    return [row[0] for row in conn.execute("SELECT id FROM images WHERE parent = ?", (image_id,))]


def unused_layers(conn: sqlite3.Connection, protected: Iterable[str] = ()) -> list[str]:
    """Delete the layer rows no image uses (except ``protected``); return their diff IDs."""
    keep = set(protected)
    rows = conn.execute(
        "SELECT diff_id FROM layers WHERE diff_id NOT IN (SELECT diff_id FROM image_layers)"
    ).fetchall()
    removed = [diff_id for (diff_id,) in rows if diff_id not in keep]
    conn.executemany("DELETE FROM layers WHERE diff_id = ?", [(d,) for d in removed])
    return removed


def referenced_blobs(conn: sqlite3.Connection) -> set[str]:
    """Every blob digest a stored image or layer still needs."""
    found = {"sha256:" + row[0] for row in conn.execute("SELECT id FROM images")}
    found |= {row[0] for row in conn.execute("SELECT manifest_digest FROM images")}
    found |= {
        row[0]
        for row in conn.execute(
            "SELECT digest FROM layer_blobs WHERE diff_id IN (SELECT diff_id FROM layers)"
        )
    }
    return found


def all_layer_ids(conn: sqlite3.Connection) -> set[str]:
    """Diff IDs of every stored layer."""
    return {row[0] for row in conn.execute("SELECT diff_id FROM layers")}


def count_images(conn: sqlite3.Connection) -> int:
    """How many images are stored."""
    return int(conn.execute("SELECT count(*) FROM images").fetchone()[0])


def find_by_name(conn: sqlite3.Connection, name: str) -> str | None:
    """The image holding exactly this full name."""
    row = conn.execute("SELECT image_id FROM image_names WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def find_by_digest(conn: sqlite3.Connection, repository: str, digest: str) -> str | None:
    """The image stored for ``repository@digest`` (or with that manifest digest)."""
    row = conn.execute(
        "SELECT image_id FROM image_digests WHERE repository = ? AND digest = ?",
        (repository, digest),
    ).fetchone()
    if row:
        return str(row[0])
    row = conn.execute("SELECT id FROM images WHERE manifest_digest = ?", (digest,)).fetchone()
    return row[0] if row else None


def find_by_id_prefix(conn: sqlite3.Connection, prefix: str) -> str | None:
    """The image whose ID starts with ``prefix``; ``Conflict`` when several do."""
    found = ids_with_prefix(conn, "images", prefix)
    if len(found) > 1:
        raise Conflict(
            f"{prefix}: ambiguous image ID prefix: more than one image matches",
            cause="ambiguous name",
        )
    return found[0] if found else None


def find_by_suffix(conn: sqlite3.Connection, path_and_tag: str) -> list[tuple[str, str]]:
    """``(image ID, name)`` of names ending in ``/path:tag`` (Podman's short-name matching)."""
    pattern = "%/" + path_and_tag.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(
        "SELECT image_id, name FROM image_names WHERE name LIKE ? ESCAPE '\\'", (pattern,)
    )
    return sorted((row[0], row[1]) for row in rows)


def _first_name(conn: sqlite3.Connection, image_id: str | None) -> tuple[str, str] | None:
    """Found by ID: Podman names the image by its first name ("" if it has none)."""
    if image_id is None:
        return None
    row = conn.execute(
        "SELECT name FROM image_names WHERE image_id = ? ORDER BY added LIMIT 1", (image_id,)
    ).fetchone()
    return image_id, row[0] if row else ""


def find_image(
    conn: sqlite3.Connection, text: str, domains: Sequence[str]
) -> tuple[str, str] | None:
    """The image ``text`` names: an ID or ID prefix, a full name, a digest reference, or a
    short name tried with each of ``domains`` in turn, then as the ending ``/name:tag`` of
    one stored name (Podman's short-name matching).

    :returns: the image's ID and the name it was found by, resolved as Podman's
        ``RootfsImageName`` (``busybox`` -> ``docker.io/library/busybox:latest``;
        for an ID, the image's first name).
    :raises Conflict: a short name or ID prefix that matches several images.
    """
    text = text.removeprefix("sha256:") if reference.is_image_id(text) else text
    if reference.is_image_id(text):
        return _first_name(conn, find_by_id_prefix(conn, text))
    try:
        ref = reference.parse(text)
    except InvalidArgument:
        ref = None
    if ref is not None:
        if ref.digest and not ref.tag:
            found = find_by_digest(conn, ref.repository, ref.digest)
            if found:
                return found, ref.name
        elif ref.explicit_domain:
            found = find_by_name(conn, ref.name)
            if found:
                return found, ref.name
        else:
            for domain in domains:
                candidate = ref.with_domain(domain).name
                found = find_by_name(conn, candidate)
                if found:
                    return found, candidate
            short = ref.path.removeprefix(reference.OFFICIAL_PREFIX)
            matches = find_by_suffix(conn, f"{short}:{ref.tag or 'latest'}")
            if len({image_id for image_id, _ in matches}) > 1:
                raise Conflict(
                    f"{text}: short name is ambiguous: more than one image matches",
                    cause="ambiguous name",
                )
            if matches:
                return matches[0]
    if all(c in "0123456789abcdef" for c in text) and len(text) >= 3:
        return _first_name(conn, find_by_id_prefix(conn, text))
    if ref is None:
        reference.parse(text)  # raise the parse error for a name that is not an ID
    return None


def check_name_free_of_digest(name: str) -> None:
    """Tags cannot carry a digest."""
    if "@" in name:
        raise InvalidArgument(f"{name}: cannot tag with a digest reference")
