"""Safe extraction of tar streams: image layers and ``PUT /containers/{id}/archive``.

Whatever an archive contains, extraction never creates, writes, links, chmods or
chowns anything outside the directory it extracts into.  Three rules make that so:

* Entry names and hard link targets are made relative (a leading ``/`` is dropped,
  as Docker does) and normalised; a ``..`` that climbs out is refused.
* Every directory on the way to an entry is opened component by component with
  ``O_NOFOLLOW`` relative to the previous one's descriptor.  A symlink met on the
  way (one the archive created, or one already in a container's rootfs) is
  resolved *inside* the root, like Docker's ``FollowSymlinkInScope``: an absolute
  target restarts at the root and ``..`` stops there.
* The entry itself is created relative to its parent's descriptor, after
  removing what was there (``O_CREAT | O_EXCL | O_NOFOLLOW`` for files), and its
  metadata is set through that descriptor without following symlinks; so
  neither a final-component symlink nor a concurrent rename redirects a write.

Every function blocks: run it in a thread.
"""

import bz2
import contextlib
import errno
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, cast

from attrs import frozen

from podapi.errors import InvalidArgument, NotFound
from podapi.oci.scope import DIR_FLAGS, walk
from podapi.storage.tarstream import Chunks, TarReader, file_chunks

#: What a path met during extraction can answer when something else is changing the
#: tree at the same time (only a running container's filesystem can).
_CHANGED_UNDER_US = frozenset(
    (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EEXIST, errno.EISDIR, errno.ENOTEMPTY)
)
WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"

_PAX_XATTR = "SCHILY.xattr."
# overlayfs keeps its own bookkeeping under this prefix; a layer that carries such
# attributes (a careless export of an upper dir) must not steer our mounts.
_OVERLAY_XATTR = "trusted.overlay."
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_IMPLICIT_DIR_MODE = 0o755


class InvalidArchive(InvalidArgument):
    """The tar stream is corrupt or tries to reach outside its root."""

    cause = "invalid tar"


# -- compression: the one detector (layers, image archives, docker cp uploads) --

GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: Bytes :func:`compression_of` needs to look at.
MAGIC_SIZE = 6
_OPENERS: dict[str, Callable[[Any], BinaryIO]] = {
    "gzip": lambda f: cast(BinaryIO, gzip.GzipFile(fileobj=f, mode="rb")),
    "bzip2": lambda f: cast(BinaryIO, bz2.BZ2File(f, mode="rb")),
    "xz": lambda f: cast(BinaryIO, lzma.LZMAFile(f, mode="rb")),  # noqa: SIM115 - returned
}


def compression_of(head: bytes) -> str | None:
    """``gzip``, ``bzip2``, ``xz`` or ``zstd`` for content starting with ``head``; None: plain.

    The magic numbers Docker's ``archive.DetectCompression`` checks.
    """
    for name, magic in (
        ("gzip", GZIP_MAGIC),
        ("bzip2", BZIP2_MAGIC),
        ("xz", XZ_MAGIC),
        ("zstd", ZSTD_MAGIC),
    ):
        if head.startswith(magic):
            return name
    return None


def open_decompressed(source: BinaryIO, compression: str) -> BinaryIO:
    """A streaming reader of ``source`` decompressed in-process (gzip, bzip2, xz).

    Python's own decompressors only: nothing is run, least of all a program found
    in a container.  Corrupt data reads as :class:`InvalidArchive`.

    :raises InvalidArchive: for a compression we cannot read (zstd).
    """
    opener = _OPENERS.get(compression)
    if opener is None:
        raise InvalidArchive(f"{compression}-compressed archives are not supported")
    return cast(BinaryIO, _Decompressing(opener(source)))


def decompressed(stream: BinaryIO) -> BinaryIO:
    """``stream`` as a plain tar: as it is, or decompressed as it is read.

    The first bytes are read to detect the compression and handed back in front
    of the rest, so ``stream`` need not be seekable.
    """
    head = _read_exactly(stream, MAGIC_SIZE)
    whole = cast(BinaryIO, _Prefixed(head, stream))
    compression = compression_of(head)
    return whole if compression is None else open_decompressed(whole, compression)


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


class _Prefixed:
    """``head`` (already read) and then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._stream.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._stream.read(size)


class _Decompressing:
    """A decompressor's reads, its errors (truncated or corrupt data) as InvalidArchive."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as e:
            raise InvalidArchive(f"cannot decompress the archive: {e}") from None

    def close(self) -> None:
        self._stream.close()


@frozen
class ExtractStats:
    """What an extraction wrote.

    :ivar files: number of tar entries processed.
    :ivar size: sum of the sizes of regular files.
    """

    files: int
    size: int


@frozen
class _DirMeta:
    """Metadata of a directory entry, applied once its children are written."""

    mode: int
    uid: int
    gid: int
    times: tuple[int, int]


def extract_layer(stream: BinaryIO, dest: str) -> ExtractStats:
    """Unpack an uncompressed image layer into ``dest`` as an overlayfs lower dir.

    OCI/Docker whiteouts become overlay whiteouts: ``dir/.wh.NAME`` is created as
    ``dir/NAME``, a 0/0 character device, and ``dir/.wh..wh..opq`` sets
    ``trusted.overlay.opaque=y`` on ``dir``; neither marker file is written.
    Other ``.wh..wh.*`` names are AUFS metadata and are skipped, as Docker does.

    :param stream: the tar, read strictly sequentially and then to EOF, so a
        hashing wrapper sees every byte.
    :param dest: an existing, empty directory.
    :raises InvalidArchive: for a corrupt tar or an entry that would land outside
        ``dest``.  What was written so far stays in ``dest``.
    """
    return extract_layer_chunks(file_chunks(stream), dest)


def extract_layer_chunks(source: Chunks, dest: str) -> ExtractStats:
    """:func:`extract_layer` of a stream given as its chunks (read to the end)."""
    root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _Extractor(root, [], layer=True).run(source)
    finally:
        os.close(root)


def extract_into(
    stream: BinaryIO,
    root: str,
    target: str = "/",
    *,
    no_overwrite_dir_non_dir: bool = False,
    owner: tuple[int, int] | None = None,
    mode: int | None = None,
) -> ExtractStats:
    """Unpack a tar into the directory ``target`` of the tree at ``root``.

    This is Docker's ``PUT /containers/{id}/archive``: ``root`` is a container's
    rootfs and symlinks in it resolve as they would inside the container.  Entry
    names are relative to ``target`` and may not climb above it (Docker's
    breakout check); symlinks met on the way may point anywhere inside ``root``.
    Whiteout names are ordinary files here.

    :param stream: the tar, plain or compressed with gzip, bzip2 or xz (Docker's
        API allows each; :func:`decompressed`), read sequentially and then to EOF.
    :param root: the directory that plays ``/``.
    :param target: where to extract, as a path inside ``root``.
    :param no_overwrite_dir_non_dir: refuse to replace a directory with a
        non-directory or the reverse (Docker's ``noOverwriteDirNonDir``).
    :param owner: ``(uid, gid)`` for every entry written, instead of the tar's.
    :param mode: permission bits for every entry but symlinks, instead of the tar's
        (a Dockerfile's ``COPY --chmod``).
    :raises NotFound: ``target`` does not exist.
    :raises InvalidArgument: ``target`` is not a directory.
    :raises InvalidArchive: for a corrupt tar, an entry that would land outside
        ``target``, or a replacement ``no_overwrite_dir_non_dir`` forbids.
    """
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        base = _resolve_target(root_fd, target)
        extractor = _Extractor(
            root_fd,
            base,
            layer=False,
            no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
            owner=owner,
            mode=mode,
        )
        return extractor.run(file_chunks(decompressed(stream)))
    finally:
        os.close(root_fd)


def clean_name(name: str) -> list[str]:
    """Split a tar entry name into its components below the extraction root.

    A leading ``/`` or ``./`` is dropped, as Docker does; ``.`` and empty
    components vanish and ``..`` cancels the component before it.  The root itself
    is ``[]``.

    :raises InvalidArchive: the name is empty, holds a NUL byte or climbs out.
    """
    if not name or "\0" in name:
        raise InvalidArchive(f"invalid tar entry name {name!r}")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise InvalidArchive(f"tar entry {name!r} points outside the extraction root")
            parts.pop()
        else:
            parts.append(part)
    return parts


def _resolve_target(root: int, target: str) -> list[str]:
    """The real components (no symlinks) of ``target``, resolved inside ``root``."""

    def fail(reason: str) -> Exception:
        return InvalidArgument(f"extraction point {target}: {reason}")

    try:
        names, fd = walk(root, target.split("/"), mkdir=None, fail=fail)
    except FileNotFoundError:
        raise NotFound(f"could not find the file {target}") from None
    os.close(fd)
    return names


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _times(member: tarfile.TarInfo) -> tuple[int, int]:
    """(atime, mtime) in nanoseconds; atime is the PAX one if present, else mtime."""
    mtime = int(member.mtime * 1_000_000_000)
    atime = mtime
    if "atime" in member.pax_headers:
        with contextlib.suppress(ValueError):
            atime = int(float(member.pax_headers["atime"]) * 1_000_000_000)
    return atime, mtime


def _xattrs(member: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    """The PAX ``SCHILY.xattr.*`` attributes, minus overlayfs' own."""
    found = []
    for key, value in member.pax_headers.items():
        if key.startswith(_PAX_XATTR):
            attr = key[len(_PAX_XATTR) :]
            if attr.startswith(_OVERLAY_XATTR):
                continue
            # tarfile decodes PAX values as UTF-8 with surrogateescape; undo it to
            # get binary attributes such as security.capability back byte for byte.
            found.append((attr, value.encode("utf-8", "surrogateescape")))
    return found


def _set_xattrs(path: int | str, attrs: list[tuple[str, bytes]]) -> None:
    """Set attributes on a descriptor or (not following symlinks) a path."""
    for attr, value in attrs:
        try:
            if isinstance(path, int):
                os.setxattr(path, attr, value)
            else:
                os.setxattr(path, attr, value, follow_symlinks=False)
        except OSError as e:
            # Docker's createTarFile skips attributes the filesystem or our
            # privileges do not allow (ENOTSUP, EPERM) instead of failing the layer.
            if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                raise


class _Extractor:
    """One extraction: the root descriptor, options and per-run bookkeeping."""

    def __init__(
        self,
        root: int,
        base: list[str],
        *,
        layer: bool,
        no_overwrite_dir_non_dir: bool = False,
        owner: tuple[int, int] | None = None,
        mode: int | None = None,
    ) -> None:
        self._root = root
        self._mode = mode
        self._base = base
        self._layer = layer
        self._no_overwrite_dir_non_dir = no_overwrite_dir_non_dir
        self._owner = owner
        # Directory metadata is applied at the end, deepest first, so children can
        # be written into a read-only directory and its mtime is not bumped again.
        self._dirs: dict[tuple[str, ...], _DirMeta] = {}
        # Entries come grouped by directory, so keep the last parent open.  Any
        # removal may change what a path resolves to and marks the cache stale.
        self._cached: tuple[tuple[str, ...], int] | None = None
        self._stale = False

    def run(self, source: Chunks) -> ExtractStats:
        """Extract every member of the tar in ``source``, then read it to the end."""
        tar = TarReader(source)
        files = size = 0
        try:
            while (member := tar.next()) is not None:
                try:
                    self._member(tar, member)
                except (ValueError, OverflowError) as e:
                    # NUL bytes and out-of-range ids, modes or times in headers.
                    raise InvalidArchive(f"invalid tar entry {member.name!r}: {e}") from e
                except OSError as e:
                    if e.errno not in _CHANGED_UNDER_US:
                        raise
                    # A running container changed the tree while we wrote into it (a
                    # directory removed, or swapped for a link): the copy, not the
                    # server, failed.  Every step stays inside the root anyway.
                    raise InvalidArchive(
                        f"cannot extract {member.name!r}: the directory changed during "
                        f"the copy ({e.strerror})"
                    ) from e
                finally:
                    if self._stale:
                        self._drop_cache()
                files += 1
                if member.isreg():
                    size += member.size
            self._finish_dirs()
            # The end-of-archive blocks and any padding after them: a hashing tap
            # on the stream must see the whole blob.
            tar.drain()
        except tarfile.TarError as e:
            raise InvalidArchive(f"invalid tar: {e}") from e
        finally:
            self._drop_cache()
        return ExtractStats(files, size)

    # -- resolving paths inside the root ---------------------------------------

    def _open_dir(self, parts: Sequence[str], *, create: bool) -> int:
        """Open the directory ``base/parts``, resolving symlinks inside the root.

        Missing directories are created (mode 0755) when ``create`` is set.  The
        caller closes the returned descriptor.

        :raises FileNotFoundError: a component is missing and ``create`` is unset.
        :raises InvalidArchive: a component is not a directory, or symlinks loop.
        """

        def fail(reason: str) -> Exception:
            return InvalidArchive(f"{'/'.join(parts)}: {reason}")

        _, fd = walk(
            self._root, [*self._base, *parts], mkdir=self._mkdir if create else None, fail=fail
        )
        return fd

    def _mkdir(self, name: str, dir_fd: int) -> int:
        """Create a directory the archive implies but does not list; open it."""
        # If something appeared meanwhile, the no-follow open below decides.
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, _IMPLICIT_DIR_MODE, dir_fd=dir_fd)
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        try:
            os.fchmod(fd, _IMPLICIT_DIR_MODE)  # undo the process umask
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _parent(self, parts: Sequence[str]) -> int:
        """The (cached) descriptor of directory ``parts``, created if missing."""
        key = tuple(parts)
        if self._cached is not None:
            if self._cached[0] == key:
                return self._cached[1]
            self._drop_cache()
        fd = self._open_dir(parts, create=True)
        self._cached = (key, fd)
        return fd

    def _drop_cache(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None
        self._stale = False

    def _clear(self, dir_fd: int, name: str, parts: Sequence[str], *, is_dir: bool) -> bool:
        """Make room for a new entry at ``name``; True if a directory stays."""
        existing = _lstat(name, dir_fd)
        if existing is None:
            return False
        was_dir = stat.S_ISDIR(existing.st_mode)
        if self._no_overwrite_dir_non_dir and was_dir != is_dir:
            path = "/".join(parts)
            if was_dir:
                raise InvalidArchive(f"cannot overwrite directory {path!r} with non-directory")
            raise InvalidArchive(f"cannot overwrite non-directory {path!r} with directory")
        if was_dir and is_dir:
            return True
        # Like tar: a later entry replaces an earlier one of the same name.
        self._stale = True
        if was_dir:
            shutil.rmtree(name, dir_fd=dir_fd)
            prefix = tuple(parts)
            self._dirs = {
                key: meta for key, meta in self._dirs.items() if key[: len(prefix)] != prefix
            }
        else:
            os.unlink(name, dir_fd=dir_fd)
        return False

    # -- entries ---------------------------------------------------------------

    def _ids(self, member: tarfile.TarInfo) -> tuple[int, int]:
        return self._owner if self._owner is not None else (member.uid, member.gid)

    def _member(self, tar: TarReader, member: tarfile.TarInfo) -> None:
        parts = clean_name(member.name)
        if self._layer and parts and parts[-1].startswith(WHITEOUT_PREFIX):
            self._whiteout(parts)
            return
        if not parts:
            # Docker skips the "." entry: the root's own metadata is the caller's.
            if member.isdir():
                return
            raise InvalidArchive(f"tar entry {member.name!r} is not a directory but names the root")
        name = parts[-1]
        parent = self._parent(parts[:-1])
        if self._mode is not None and not member.issym():
            member.mode = member.mode & ~0o7777 | self._mode
        if member.isreg():
            self._regular(tar, member, parent, name, parts)
        elif member.isdir():
            self._directory(member, parent, name, parts)
        elif member.issym():
            self._symlink(member, parent, name, parts)
        elif member.islnk():
            self._hardlink(member, parent, name, parts)
        elif member.ischr() or member.isblk() or member.isfifo():
            self._special(member, parent, name, parts)
        else:
            raise InvalidArchive(f"tar entry {member.name!r} has unsupported type {member.type!r}")

    def _regular(
        self,
        tar: TarReader,
        member: tarfile.TarInfo,
        parent: int,
        name: str,
        parts: Sequence[str],
    ) -> None:
        self._clear(parent, name, parts, is_dir=False)
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            for piece in tar.data(member):
                done = 0
                while done < len(piece):
                    done += os.write(fd, piece[done:])
            # chown before chmod: chown drops setuid/setgid bits and file
            # capabilities, so the mode and the xattrs come after it.
            os.fchown(fd, *self._ids(member))
            os.fchmod(fd, stat.S_IMODE(member.mode))
            _set_xattrs(fd, _xattrs(member))
            os.utime(fd, ns=_times(member))
        finally:
            os.close(fd)

    def _directory(
        self, member: tarfile.TarInfo, parent: int, name: str, parts: Sequence[str]
    ) -> None:
        if not self._clear(parent, name, parts, is_dir=True):
            os.mkdir(name, 0o700, dir_fd=parent)
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        try:
            _set_xattrs(fd, _xattrs(member))
        finally:
            os.close(fd)
        uid, gid = self._ids(member)
        self._dirs[tuple(parts)] = _DirMeta(stat.S_IMODE(member.mode), uid, gid, _times(member))

    def _symlink(
        self, member: tarfile.TarInfo, parent: int, name: str, parts: Sequence[str]
    ) -> None:
        # The target is stored as it is: it only matters when something resolves
        # it, and inside this module that is always done within the root.
        if not member.linkname:
            raise InvalidArchive(f"symlink {member.name!r} has an empty target")
        self._clear(parent, name, parts, is_dir=False)
        os.symlink(member.linkname, name, dir_fd=parent)
        self._stale = True
        os.chown(name, *self._ids(member), dir_fd=parent, follow_symlinks=False)
        _set_xattrs(_proc_path(parent, name), _xattrs(member))
        os.utime(name, ns=_times(member), dir_fd=parent, follow_symlinks=False)

    def _hardlink(
        self, member: tarfile.TarInfo, parent: int, name: str, parts: Sequence[str]
    ) -> None:
        # Docker joins the link target to the extraction directory, so an absolute
        # one is relative to it; "../" out of it is refused like any entry name.
        target = clean_name(member.linkname)
        if not target:
            raise InvalidArchive(f"hard link {member.name!r} points at the root")
        try:
            target_dir = self._open_dir(target[:-1], create=False)
        except FileNotFoundError:
            raise InvalidArchive(
                f"hard link {member.name!r}: target {member.linkname!r} not found"
            ) from None
        try:
            found = _lstat(target[-1], target_dir)
            if found is None or stat.S_ISDIR(found.st_mode):
                raise InvalidArchive(
                    f"hard link {member.name!r}: target {member.linkname!r} "
                    "is missing or a directory"
                )
            existing = _lstat(name, parent)
            if existing is not None and (existing.st_dev, existing.st_ino) == (
                found.st_dev,
                found.st_ino,
            ):
                return
            self._clear(parent, name, parts, is_dir=False)
            # Without AT_SYMLINK_FOLLOW: a link to a symlink links the symlink.
            os.link(
                target[-1],
                name,
                src_dir_fd=target_dir,
                dst_dir_fd=parent,
                follow_symlinks=False,
            )
        finally:
            os.close(target_dir)

    def _special(
        self, member: tarfile.TarInfo, parent: int, name: str, parts: Sequence[str]
    ) -> None:
        if member.ischr():
            kind, device = stat.S_IFCHR, os.makedev(member.devmajor, member.devminor)
        elif member.isblk():
            kind, device = stat.S_IFBLK, os.makedev(member.devmajor, member.devminor)
        else:
            kind, device = stat.S_IFIFO, 0
        self._clear(parent, name, parts, is_dir=False)
        os.mknod(name, kind | 0o600, device, dir_fd=parent)
        os.chown(name, *self._ids(member), dir_fd=parent, follow_symlinks=False)
        # mknod's mode went through the umask, and setuid bits need setting after chown.
        os.chmod(name, stat.S_IMODE(member.mode), dir_fd=parent, follow_symlinks=False)
        _set_xattrs(_proc_path(parent, name), _xattrs(member))
        os.utime(name, ns=_times(member), dir_fd=parent, follow_symlinks=False)

    def _whiteout(self, parts: list[str]) -> None:
        """Turn an OCI whiteout into its overlayfs form."""
        marker = parts[-1]
        parent = self._parent(parts[:-1])
        if marker == WHITEOUT_OPAQUE:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if marker.startswith(WHITEOUT_META_PREFIX):
            # AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): Docker skips it too.
            return
        name = marker[len(WHITEOUT_PREFIX) :]
        if name in ("", ".", ".."):
            raise InvalidArchive(f"invalid whiteout {'/'.join(parts)!r}")
        self._clear(parent, name, [*parts[:-1], name], is_dir=False)
        os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
        os.chown(name, 0, 0, dir_fd=parent, follow_symlinks=False)

    def _finish_dirs(self) -> None:
        """Apply owner, mode and times to the directory entries, deepest first."""
        for parts in sorted(self._dirs, key=len, reverse=True):
            meta = self._dirs[parts]
            try:
                parent = self._open_dir(parts[:-1], create=False)
            except (FileNotFoundError, InvalidArchive):
                continue  # replaced by a later entry
            try:
                fd = os.open(parts[-1], DIR_FLAGS, dir_fd=parent)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    continue
                raise
            finally:
                os.close(parent)
            try:
                os.fchown(fd, meta.uid, meta.gid)
                os.fchmod(fd, meta.mode)
                os.utime(fd, ns=meta.times)
            finally:
                os.close(fd)


def _proc_path(dir_fd: int, name: str) -> str:
    """A path to ``name`` in ``dir_fd`` for calls without ``dir_fd`` (setxattr).

    The kernel resolves the ``/proc/self/fd`` link to the directory itself, so only
    ``name`` is looked up, and the caller does not follow it.
    """
    return f"/proc/self/fd/{dir_fd}/{name}"
