"""The build context on disk: extracted, filtered by ``.dockerignore``, copied from.

Everything here blocks: the builder runs it in the engine's thread pool.  The
context tar goes through the same extractor as layers and ``docker cp``
uploads (:func:`podapi.storage.tarextract.extract_into`: nothing lands outside
the context directory, a ``..`` that climbs out is refused), and COPY/ADD read
sources through :func:`podapi.storage.pathstat.archive_as` (resolved inside the
context, symlinks never followed out of it) and write them into a working
container's root filesystem through the extractor again.
"""

import hashlib
import io
import os
import posixpath
import shutil
import tarfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO, cast

from attrs import frozen

from podapi.engine.imagebuild.ignore import Ignore, go_pattern
from podapi.errors import InvalidArgument, NotFound
from podapi.oci.scope import DIR_FLAGS, read_file, walk
from podapi.storage.difflayer import ChunkReader
from podapi.storage.pathstat import NoSuchPath, archive_as, stat_path
from podapi.storage.tarextract import MAGIC_SIZE, compression_of, extract_into

#: Podman looks for a Containerfile first, then a Dockerfile (buildah ``DefaultDockerfile``).
DEFAULT_NAMES = ("Containerfile", "Dockerfile")
DOCKERFILE_LIMIT = 4 << 20
_GLOB = frozenset("*?[")


class MissingSource(NotFound):
    """A COPY/ADD source that is not in the context (or was left out by ``.dockerignore``)."""

    cause = "no such file or directory"


@frozen
class Source:
    """A COPY/ADD source: the tree it is in and its path there (``/``-separated)."""

    root: str
    path: str
    is_dir: bool


def extract_context(stream: BinaryIO, dest: str) -> None:
    """Unpack the context tar (plain, gzip, bzip2 or xz) into the empty directory ``dest``.

    :raises InvalidArchive: a corrupt tar or an entry that would land outside ``dest``.
    """
    extract_into(stream, dest)


def read_dockerfile(root: str, name: str) -> tuple[str, str]:
    """The Dockerfile's name and text; ``name`` "" tries :data:`DEFAULT_NAMES`.

    :raises InvalidArgument: as Podman's "Cannot locate specified Dockerfile" when missing.
    """
    for candidate in [name] if name else DEFAULT_NAMES:
        data = read_file(root, posixpath.normpath("/" + candidate), DOCKERFILE_LIMIT)
        if data is not None:
            try:
                return candidate, data.decode()
            except UnicodeDecodeError as e:
                raise InvalidArgument(f"{candidate} is not UTF-8 text: {e}") from None
    raise InvalidArgument(
        f"Cannot locate specified Dockerfile: {name or DEFAULT_NAMES[-1]}",
        cause="no such file or directory",
    )


def apply_dockerignore(root: str) -> None:
    """Remove what the context's ``.dockerignore`` leaves out (moby's classic builder does
    the same after the upload; the docker CLI filtered already, curl did not).

    A left-out directory is kept while a ``!`` pattern might re-include something in it.
    """
    text = read_file(root, "/.dockerignore", DOCKERFILE_LIMIT)
    if text is None:
        return
    ignore = Ignore.parse(text.decode(errors="replace"))
    for top, dirs, files in os.walk(root):
        rel = os.path.relpath(top, root)
        prefix = "" if rel == "." else rel + "/"
        for name in files:
            if ignore.ignored(prefix + name):
                os.unlink(os.path.join(top, name))
        for name in list(dirs):
            path = os.path.join(top, name)
            if os.path.islink(path):
                dirs.remove(name)
                if ignore.ignored(prefix + name):
                    os.unlink(path)
            elif ignore.ignored(prefix + name) and not ignore.has_exclusions:
                dirs.remove(name)
                shutil.rmtree(path)


def _walk_paths(root: str) -> Iterator[tuple[str, bool]]:
    for top, dirs, files in os.walk(root):
        rel = os.path.relpath(top, root)
        prefix = "" if rel == "." else rel + "/"
        for name in sorted(dirs):
            yield prefix + name, not os.path.islink(os.path.join(top, name))
        for name in sorted(files):
            yield prefix + name, False


def find_sources(root: str, patterns: Sequence[str]) -> list[Source]:
    """The context paths COPY/ADD ``patterns`` name (Go ``filepath.Match`` wildcards).

    :raises MissingSource: a path that does not exist, or a wildcard nothing matches
        (Docker's words).
    """
    found: list[Source] = []
    for pattern in patterns:
        clean = posixpath.normpath("/" + pattern).lstrip("/") or "."
        if _GLOB & set(clean):
            regex = go_pattern(clean)
            matches = [Source(root, p, d) for p, d in _walk_paths(root) if regex.match(p)]
            if not matches:
                raise MissingSource(
                    f"COPY failed: no source files were specified (pattern {pattern!r})"
                )
            found.extend(matches)
            continue
        try:
            info = stat_path(root, "/" + clean if clean != "." else "/")
        except NoSuchPath:
            raise MissingSource(
                f"COPY failed: file not found in build context or excluded by "
                f".dockerignore: stat {clean}: file does not exist"
            ) from None
        found.append(Source(root, clean, info.is_dir and not info.link_target.startswith("..")))
    return found


def source_digest(sources: Sequence[Source]) -> str:
    """A digest of the sources' names, types, modes, owners and content: the COPY/ADD cache
    key part.  Times are left out, as Docker's tarsum leaves them out: a checkout or a
    ``touch`` that changes nothing else keeps the cache.
    """
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.path.encode() + b"\0")
        _, stream = archive_as(source.root, "/" + source.path, "s")
        try:
            with tarfile.open(fileobj=cast(BinaryIO, ChunkReader(stream)), mode="r|") as tar:
                for member in tar:
                    meta = (member.name, member.type, member.mode, member.uid, member.gid)
                    digest.update(repr((*meta, member.size, member.linkname)).encode())
                    data = tar.extractfile(member) if member.isreg() else None
                    while data is not None and (chunk := data.read(1 << 20)):
                        digest.update(chunk)
        finally:
            stream.close()
    return "sha256:" + digest.hexdigest()


def is_archive(source: Source) -> bool:
    """Whether ADD extracts the file: tar, or tar compressed with gzip, bzip2 or xz."""
    if source.is_dir:
        return False
    path = os.path.join(source.root, source.path)
    if os.path.islink(path):
        return False
    with open(path, "rb") as f:
        head = f.read(512)
    if compression_of(head[:MAGIC_SIZE]) in ("gzip", "bzip2", "xz"):
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


def ensure_dir(rootfs: str, path: str, owner: tuple[int, int] | None) -> None:
    """Create the directory ``path`` in ``rootfs`` (and its parents, 0755), inside it."""

    def make(name: str, parent: int) -> int:
        os.mkdir(name, 0o755, dir_fd=parent)
        if owner is not None:
            os.chown(name, *owner, dir_fd=parent, follow_symlinks=False)
        return os.open(name, DIR_FLAGS, dir_fd=parent)

    root_fd = os.open(rootfs, DIR_FLAGS)
    try:
        parts = [p for p in path.split("/") if p]
        _, fd = walk(root_fd, parts, mkdir=make, fail=InvalidArgument)
        os.close(fd)
    finally:
        os.close(root_fd)


def copy_source(
    source: Source,
    rootfs: str,
    dest: str,
    *,
    owner: tuple[int, int] | None,
    mode: int | None,
) -> None:
    """Copy a source to the path ``dest`` in ``rootfs`` (a directory's contents into it)."""
    _, stream = archive_as(source.root, "/" + source.path, dest.strip("/") or ".")
    try:
        if source.is_dir:
            ensure_dir(rootfs, dest, owner)
        extract_into(cast(BinaryIO, ChunkReader(stream)), rootfs, "/", owner=owner, mode=mode)
    finally:
        stream.close()


def extract_archive(
    source: Source, rootfs: str, dest: str, *, owner: tuple[int, int] | None
) -> None:
    """ADD of a local archive: its entries into the directory ``dest``."""
    ensure_dir(rootfs, dest, owner)
    with open(os.path.join(source.root, source.path), "rb") as f:
        extract_into(f, rootfs, dest, owner=owner)


def write_file(
    rootfs: str, dest: str, content: bytes, *, owner: tuple[int, int] | None, mode: int | None
) -> None:
    """A here-document's content as the file ``dest`` (``COPY <<EOF /dest``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(dest.strip("/"))
        info.size = len(content)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    buffer.seek(0)
    extract_into(buffer, rootfs, "/", owner=owner, mode=mode)


def is_dir_in(rootfs: str, path: str) -> bool:
    """Whether ``path`` is a directory in ``rootfs`` (symlinks resolved inside it)."""
    try:
        return stat_path(rootfs, path).is_dir
    except NoSuchPath:
        return False


def lookup_ids(rootfs: str, user: str, group: str) -> tuple[int, int]:
    """``--chown=user:group`` as numbers, names read from the image's passwd and group.

    :raises InvalidArgument: a name the image does not know (Docker's message).
    """

    def find(name: str, file: str, field: int) -> int | None:
        if name.isdigit():
            return int(name)
        data = read_file(rootfs, file) or b""
        for line in data.decode(errors="replace").splitlines():
            parts = line.split(":")
            if len(parts) > field and parts[0] == name:
                return int(parts[field]) if parts[field].isdigit() else None
        return None

    uid = find(user, "/etc/passwd", 2)
    if uid is None:
        raise InvalidArgument(
            f"unable to convert uid/gid chown string to host mapping: no such user {user!r}"
        )
    if not group:
        gid = uid if user.isdigit() else _primary_gid(rootfs, user)
    else:
        found = find(group, "/etc/group", 2)
        if found is None:
            raise InvalidArgument(
                f"unable to convert uid/gid chown string to host mapping: no such group {group!r}"
            )
        gid = found
    return uid, gid


def _primary_gid(rootfs: str, user: str) -> int:
    data = read_file(rootfs, "/etc/passwd") or b""
    for line in data.decode(errors="replace").splitlines():
        parts = line.split(":")
        if len(parts) > 3 and parts[0] == user and parts[3].isdigit():
            return int(parts[3])
    return 0
