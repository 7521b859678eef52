"""Tar streams of directory trees: ``docker cp`` out of a container, ``docker export``,
and the layer of a ``commit`` (an overlay upper dir, ``layer=True``).

A :class:`TarStream` walks a tree below an open directory descriptor and hands
out the archive in chunks of about :data:`~podapi.storage.imageformats.CHUNK` bytes,
reading files only when the consumer asks for the next chunk: memory stays at a
chunk or two whatever the size of the tree.

Entries follow Docker's archiver (``moby/go-archive`` ``TarWithOptions`` and
``FileInfoHeader``): names sorted (bytewise) in each directory, directories
named with a trailing ``/``, modification times truncated to whole seconds,
numeric owners only, sockets skipped, a second name of an inode already in the
archive written as a hard link to the first, and Go's ending (two zero blocks,
no padding to a 10 KiB record).  Extended attributes go into PAX
``SCHILY.xattr.*`` records, except overlayfs' own ``trusted.overlay.*`` (Docker
keeps only ``security.capability``; we keep them all, as GNU tar's ``--xattrs``
does).

A layer (``layer=True``) is the reverse of
:func:`podapi.storage.tarextract.extract_layer` (overlayfs's own format): a
0/0 character device is a whiteout, written as an empty ``dir/.wh.NAME``
(mode 0600, as Docker); a directory with ``trusted.overlay.opaque=y`` is
followed by a ``dir/.wh..wh..opq`` marker.

Nothing is ever followed out of the tree: every entry is opened or read
relative to its parent's descriptor, without following symlinks.  The tree may
change while it is walked (a running container): an entry that disappears is
left out, a file that changes size keeps the size its header promised.

Blocking: iterate in a thread.
"""

import errno
import os
import stat
import tarfile
import threading
from collections.abc import Generator, Iterator

from podapi.oci.scope import DIR_FLAGS
from podapi.storage.imageformats import BLOCK, CHUNK
from podapi.storage.tarextract import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

OVERLAY_XATTR = "trusted.overlay."
PAX_XATTR = "SCHILY.xattr."
# O_NONBLOCK: a file swapped for a FIFO between lstat and open must not hang us.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_ZEROS = bytes(BLOCK)
_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENXIO)
_WHITEOUT_MODE = 0o600


class TarStream:
    """The chunks of one archive, produced as they are read.

    The stream owns ``dir_fd`` and closes it in :meth:`close`, which may be
    called at any time (also before the first chunk, or from another thread
    while a chunk is being produced: it then waits for that chunk).

    :param dir_fd: an open directory.
    :param name: archive the entry ``name`` of ``dir_fd`` (not followed, so a
        symlink is archived as a link); None archives ``dir_fd`` itself.
    :param arcname: the name of that entry in the archive; for a directory ""
        leaves the directory's own entry out (``docker export``).
    :param prefix: prepended to the names of a directory's contents.
    :param layer: write overlayfs whiteouts and opaque directories as a layer's markers.
    """

    def __init__(
        self, dir_fd: int, name: str | None, arcname: str, prefix: str = "", *, layer: bool = False
    ) -> None:
        self._dir_fd = dir_fd
        self._layer = layer
        self._lock = threading.Lock()
        self._closed = False
        self._chunks = self._generate(name, arcname, prefix)

    def __iter__(self) -> "TarStream":
        return self

    def __next__(self) -> bytes:
        with self._lock:
            if self._closed:
                raise StopIteration
            return next(self._chunks)

    def close(self) -> None:
        """Stop reading and release every descriptor."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._chunks.close()
            os.close(self._dir_fd)

    def _generate(
        self, name: str | None, arcname: str, prefix: str
    ) -> Generator[bytes, None, None]:
        writer = _Writer(self._layer)
        try:
            if name is None:
                if arcname:
                    yield from writer.directory_entry(self._dir_fd, arcname)
                yield from writer.tree(self._dir_fd, prefix)
            else:
                yield from writer.entry(self._dir_fd, name, arcname)
            yield from writer.finish()
        finally:
            writer.release()


class _Writer:
    """Headers and contents of one archive, gathered into chunks."""

    def __init__(self, layer: bool) -> None:
        self._layer = layer
        self._buffer = bytearray()
        # (st_dev, st_ino) of every multiply-linked non-directory -> its first name.
        self._links: dict[tuple[int, int], str] = {}
        # Descriptors of the directories being walked, outermost first.
        self._open: list[int] = []

    # -- output --------------------------------------------------------------

    def _add(self, data: bytes) -> Iterator[bytes]:
        """Queue ``data``; hand out the queue once it holds a chunk."""
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            yield from self._flush()

    def _flush(self) -> Iterator[bytes]:
        if self._buffer:
            chunk = bytes(self._buffer)
            self._buffer.clear()
            yield chunk

    def _pad(self, size: int) -> Iterator[bytes]:
        remainder = size % BLOCK
        if remainder:
            yield from self._add(_ZEROS[remainder:])

    def finish(self) -> Iterator[bytes]:
        """What is queued, and the end of the archive."""
        self._buffer += bytes(2 * BLOCK)
        yield from self._flush()

    def release(self) -> None:
        """Close the descriptors of directories still being walked."""
        while self._open:
            os.close(self._open.pop())

    # -- entries -------------------------------------------------------------

    def directory_entry(self, fd: int, arcname: str) -> Iterator[bytes]:
        """The entry of the open directory ``fd`` itself (and its opaque marker)."""
        info = os.fstat(fd)
        name = _dir_name(arcname)
        yield from self._add(_header(name, info, tarfile.DIRTYPE, _xattrs(fd)))
        if self._layer and _is_opaque(fd):
            marker = _header(name + WHITEOUT_OPAQUE, info, tarfile.REGTYPE, {})
            yield from self._add(marker)

    def tree(self, top: int, prefix: str) -> Iterator[bytes]:
        """Everything below the open directory ``top`` (depth first, sorted).

        An explicit stack rather than recursion: trees deeper than Python's
        recursion limit exist.
        """
        stack: list[tuple[int, str, Iterator[str]]] = [(top, prefix, _sorted_names(top))]
        while stack:
            fd, base, names = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                if fd != top:
                    self._open.remove(fd)
                    os.close(fd)
                continue
            child = yield from self.entry(fd, name, base + name)
            if child is not None:
                stack.append((child, base + name + "/", _sorted_names(child)))

    def entry(self, parent: int, name: str, arcname: str) -> Generator[bytes, None, int | None]:
        """One entry of ``parent``; for a directory, its open descriptor (the caller
        walks it, this writer closes it on release) is the generator's value."""
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except OSError as e:
            if e.errno in _GONE:  # removed while we walk (a running container)
                return None
            raise
        kind = stat.S_IFMT(info.st_mode)
        if kind == stat.S_IFDIR:
            try:
                fd = os.open(name, DIR_FLAGS, dir_fd=parent)
            except OSError as e:
                if e.errno in _GONE:
                    return None
                raise
            self._open.append(fd)
            yield from self.directory_entry(fd, arcname)
            return fd
        if kind == stat.S_IFREG:
            yield from self._regular(parent, name, arcname)
            return None
        if kind == stat.S_IFSOCK:
            return None  # tar has no type for sockets (Go's archive/tar refuses them)
        if self._layer and kind == stat.S_IFCHR and info.st_rdev == 0:
            folder, _, base = arcname.rpartition("/")
            whiteout = f"{folder}/{WHITEOUT_PREFIX}{base}" if folder else WHITEOUT_PREFIX + base
            yield from self._add(_header(whiteout, info, tarfile.REGTYPE, {}, mode=_WHITEOUT_MODE))
            return None
        linked = self._hard_link(info, arcname)
        if linked is not None:
            yield from self._add(_header(arcname, info, tarfile.LNKTYPE, {}, linked))
            return None
        attrs = _xattrs(_proc_path(parent, name))
        if kind == stat.S_IFLNK:
            try:
                target = os.readlink(name, dir_fd=parent)
            except OSError as e:
                if e.errno in (*_GONE, errno.EINVAL):
                    return None
                raise
            yield from self._add(_header(arcname, info, tarfile.SYMTYPE, attrs, target))
        else:
            yield from self._add(_header(arcname, info, _SPECIAL[kind], attrs))
        return None

    def _hard_link(self, info: os.stat_result, arcname: str) -> str | None:
        """The name this inode was archived under already, or None (then it is recorded)."""
        if info.st_nlink < 2:
            return None
        key = (info.st_dev, info.st_ino)
        first = self._links.get(key)
        if first is None:
            self._links[key] = arcname
        return first

    def _regular(self, parent: int, name: str, arcname: str) -> Iterator[bytes]:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno in _GONE:  # gone, or replaced by a symlink, since the lstat
                return
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return
            linked = self._hard_link(info, arcname)
            if linked is not None:
                yield from self._add(_header(arcname, info, tarfile.LNKTYPE, {}, linked))
                return
            header = _header(arcname, info, tarfile.REGTYPE, _xattrs(fd), size=info.st_size)
            yield from self._add(header)
            yield from self._content(fd, info.st_size)
        finally:
            os.close(fd)

    def _content(self, fd: int, size: int) -> Iterator[bytes]:
        """Exactly ``size`` bytes of the file, padded to a block.

        A file smaller than a chunk joins the queue (which so stays under two
        chunks); a bigger one goes out chunk by chunk as it is read.  The header
        already promised ``size``: a file that grows meanwhile is cut
        there, one that shrinks is filled with zeros, so the archive stays valid.
        """
        left = size
        if left < CHUNK:
            while left:  # small: into the queue with the headers around it
                data = os.read(fd, left)
                if not data:
                    break
                self._buffer += data
                left -= len(data)
        else:
            yield from self._flush()
            while left:  # big: its chunks go out as read, never copied again
                data = os.read(fd, min(CHUNK, left))
                if not data:
                    break
                left -= len(data)
                yield data
        while left:
            fill = min(left, CHUNK)
            yield from self._add(bytes(fill))
            left -= fill
        yield from self._pad(size)


_SPECIAL = {
    stat.S_IFCHR: tarfile.CHRTYPE,
    stat.S_IFBLK: tarfile.BLKTYPE,
    stat.S_IFIFO: tarfile.FIFOTYPE,
}


def _dir_name(arcname: str) -> str:
    return arcname if arcname.endswith("/") else arcname + "/"


def _sorted_names(fd: int) -> Iterator[str]:
    """The names in directory ``fd``, in Go's (bytewise) order."""
    with os.scandir(fd) as entries:
        names = [entry.name for entry in entries]
    return iter(sorted(names, key=os.fsencode))


def _header(
    arcname: str,
    info: os.stat_result,
    kind: bytes,
    xattrs: dict[str, str],
    linkname: str = "",
    *,
    size: int = 0,
    mode: int | None = None,
) -> bytes:
    """A tar header (PAX records only where USTAR cannot hold a value).

    :param size: the content's size (regular files; markers have none).
    :param mode: instead of ``info``'s (whiteouts).
    """
    header = tarfile.TarInfo(arcname)
    header.type = kind
    header.mode = stat.S_IMODE(info.st_mode) if mode is None else mode
    header.uid, header.gid = info.st_uid, info.st_gid
    header.mtime = info.st_mtime_ns // 1_000_000_000
    header.size = size
    header.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        header.devmajor, header.devminor = os.major(info.st_rdev), os.minor(info.st_rdev)
    header.pax_headers = xattrs
    # surrogateescape: names and values that are not UTF-8 go out byte for byte.
    return header.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _xattrs(target: int | str) -> dict[str, str]:
    """PAX records of the extended attributes of a descriptor or (not followed) a path."""
    follow = isinstance(target, int)
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, *_GONE):
            return {}
        raise
    records = {}
    for attr in sorted(names):
        if attr.startswith(OVERLAY_XATTR):
            continue
        try:
            value = os.getxattr(target, attr, follow_symlinks=follow)
        except OSError as e:
            if e.errno in (errno.ENODATA, *_GONE):
                continue
            raise
        records[PAX_XATTR + attr] = value.decode("utf-8", "surrogateescape")
    return records


def _is_opaque(dir_fd: int) -> bool:
    try:
        return os.getxattr(dir_fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _proc_path(dir_fd: int, name: str) -> str:
    """A path to ``name`` in ``dir_fd`` for calls that take no ``dir_fd`` (xattrs).

    The kernel resolves the ``/proc/self/fd`` link to the directory itself, so
    only ``name`` is looked up, and the callers do not follow it.
    """
    return f"/proc/self/fd/{dir_fd}/{name}"


def tree_stream(root: str, *, layer: bool = False) -> TarStream:
    """Everything below ``root``, named relative to it (``bin/sh``), without ``root`` itself.

    ``docker export`` of a mounted rootfs; with ``layer``, the diff layer of an
    overlay upper dir (``commit``).
    """
    return TarStream(os.open(root, DIR_FLAGS), None, "", layer=layer)
