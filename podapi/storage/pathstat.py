"""A path inside a container as ``docker cp`` sees it: its stat, and what to archive.

Docker's rules (moby ``daemon/archive_unix.go`` ``containerArchivePath``,
``daemon/containerfs_linux.go`` ``Stat``, go-archive ``PreserveTrailingDotOrSeparator``):

* The path is made absolute and cleaned lexically (``/a/../b`` is ``/b``), but a
  trailing ``/`` or ``/.`` is kept: it asserts a directory, and makes a final
  symlink be followed.
* Without one, the final component is looked at itself (``lstat``): a symlink is
  archived as a link.  Every component before it is resolved inside the root
  (:mod:`podapi.oci.scope`).
* The stat's ``name`` is the path's base name (``/`` for the root, ``.`` for
  ``/x/.``).  A directory is archived as its base name and everything below it
  (``x/``, ``x/a``...; ``./a`` for ``/x/.``; ``/a`` for ``/``); anything else
  is one entry named after the base name.

Podman's stat adds ``isDir`` (of a symlink's target) and always fills
``linkTarget`` (the container path, or a symlink's target resolved in the
container); ``podman cp`` relies on both.  We send Podman's fields: Docker
clients read ``linkTarget`` only for symlinks and ignore ``isDir``.

Blocking: call from a thread.
"""

import os
import posixpath
import stat

from attrs import frozen

from podapi.errors import InvalidArgument, NotFound
from podapi.oci.scope import DIR_FLAGS, MAX_LINKS, readlink, walk
from podapi.storage.tarwrite import TarStream

# Go's os.FileMode bits (io/fs), as Docker's PathStat carries the mode.
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20
_GO_TYPES = {
    stat.S_IFDIR: GO_MODE_DIR,
    stat.S_IFLNK: GO_MODE_SYMLINK,
    stat.S_IFBLK: GO_MODE_DEVICE,
    stat.S_IFCHR: GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
    stat.S_IFIFO: GO_MODE_NAMED_PIPE,
    stat.S_IFSOCK: GO_MODE_SOCKET,
}


class NoSuchPath(NotFound):
    """The path does not exist in the container (Podman's 404 for ``archive``)."""

    cause = "no such file or directory"


@frozen
class PathStat:
    """What ``X-Docker-Container-Path-Stat`` says about a path.

    :ivar mode: Go's ``os.FileMode`` bits (see :func:`go_file_mode`).
    :ivar link_target: the path in the container, or where a symlink leads.
    :ivar is_dir: a directory, or a symlink to one.
    """

    name: str
    size: int
    mode: int
    mtime_ns: int
    link_target: str
    is_dir: bool


@frozen
class ContainerPath:
    """A requested path, cleaned the way Docker does.

    :ivar absolute: Docker's ``absPath``: absolute, clean, trailing ``/`` or ``/.`` kept.
    :ivar parts: its components (no ``.`` or ``..`` left).
    :ivar asserts_dir: it ends with ``/`` or ``/.`` (or is the root).
    :ivar base: Go's ``filepath.Base`` of ``absolute``.
    """

    absolute: str
    parts: tuple[str, ...]
    asserts_dir: bool
    base: str

    @classmethod
    def parse(cls, path: str) -> "ContainerPath":
        """Clean ``path``; 400 for an empty one or one with a NUL byte."""
        if not path or "\0" in path:
            raise InvalidArgument(f"invalid container path {path!r}")
        clean = "/" + posixpath.normpath("/" + path).lstrip("/")
        # PreserveTrailingDotOrSeparator(filepath.Join("/", path), path)
        absolute = clean
        if _go_base(path) == ".":
            absolute = absolute.rstrip("/") + "/."
        if path.endswith("/") and not absolute.endswith("/"):
            absolute += "/"
        parts = tuple(p for p in clean.split("/") if p)
        base = _go_base(absolute)
        asserts_dir = not parts or absolute.endswith("/") or base == "."
        return cls(absolute, parts, asserts_dir, base)


def _go_base(path: str) -> str:
    """Go's ``filepath.Base``: the last element, trailing slashes ignored."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    return posixpath.basename(stripped) if stripped else "/"


def go_file_mode(st_mode: int) -> int:
    """``st_mode`` as Go's ``os.FileMode`` (``fillFileStatFromSys``)."""
    mode = st_mode & 0o777 | _GO_TYPES.get(stat.S_IFMT(st_mode), 0)
    if st_mode & stat.S_ISUID:
        mode |= GO_MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= GO_MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GO_MODE_STICKY
    return mode


def stat_path(root: str, path: str) -> PathStat:
    """``HEAD /containers/{id}/archive``: the stat of ``path`` in the tree at ``root``.

    :raises NoSuchPath: it does not exist (or a component is not a directory).
    :raises InvalidArgument: the path is empty.
    """
    found, fd, _ = _locate(root, ContainerPath.parse(path))
    os.close(fd)
    return found


def archive_path(root: str, path: str) -> tuple[PathStat, TarStream]:
    """``GET /containers/{id}/archive``: the stat of ``path`` and a tar of it.

    The path is resolved once, here; the stream holds on to what it found.
    """
    where = ContainerPath.parse(path)
    found, fd, name = _open_entry(root, where)
    if name is not None:
        return found, TarStream(fd, name, where.base)
    top = "/" if where.base == "/" else where.base + "/"
    return found, TarStream(fd, None, top, top)


def archive_as(root: str, path: str, arcname: str) -> tuple[PathStat, TarStream]:
    """A Dockerfile ``COPY`` source: ``path`` in the tree at ``root`` (resolved there as
    :func:`archive_path` resolves it) as a tar whose entry is named ``arcname``, or for
    a directory, whose contents are named below ``arcname/`` (the directory's own
    entry left out, as ``COPY dir /dest`` copies what is in it).
    """
    found, fd, name = _open_entry(root, ContainerPath.parse(path))
    if name is not None:
        return found, TarStream(fd, name, arcname)
    return found, TarStream(fd, None, "", arcname.rstrip("/") + "/")


def _open_entry(root: str, where: ContainerPath) -> tuple[PathStat, int, str | None]:
    """:func:`_locate`, with a directory named without a trailing slash opened itself."""
    found, fd, name = _locate(root, where)
    try:
        if name is not None and found.mode & GO_MODE_DIR:
            # A real directory named without a trailing slash: archive its tree.
            child = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd, name = child, None
    except BaseException:
        os.close(fd)
        raise
    return found, fd, name


def _locate(root: str, where: ContainerPath) -> tuple[PathStat, int, str | None]:
    """Stat what ``where`` names.

    :returns: the stat, an open directory and a name in it: the parent and the
        final component, or the directory itself and None when the path
        asserts a directory (the caller closes the descriptor).
    """
    root_fd = os.open(root, DIR_FLAGS)
    try:
        if where.asserts_dir:
            _, fd = _walk(root_fd, where, where.parts)
            info = os.fstat(fd)
            return _stat(where, info, where.absolute, is_dir=True), fd, None
        names, parent = _walk(root_fd, where, where.parts[:-1])
        name = where.parts[-1]
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            os.close(parent)
            raise _missing(where) from None
        target, is_dir = where.absolute, stat.S_ISDIR(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            target = follow_in_scope(root_fd, names, [name])
            is_dir = _is_dir(root_fd, target)
        return _stat(where, info, target, is_dir), parent, name
    finally:
        os.close(root_fd)


def _walk(root_fd: int, where: ContainerPath, parts: tuple[str, ...]) -> tuple[list[str], int]:
    def fail(reason: str) -> Exception:
        return _missing(where, reason)

    try:
        return walk(root_fd, parts, mkdir=None, fail=fail)
    except FileNotFoundError:
        raise _missing(where) from None


def _missing(where: ContainerPath, reason: str = "no such file or directory") -> NoSuchPath:
    return NoSuchPath(f"{where.absolute}: {reason}")


def _stat(where: ContainerPath, info: os.stat_result, target: str, is_dir: bool) -> PathStat:
    return PathStat(
        name=where.base,
        size=info.st_size,
        mode=go_file_mode(info.st_mode),
        mtime_ns=info.st_mtime_ns,
        link_target=target,
        is_dir=is_dir,
    )


def follow_in_scope(root_fd: int, resolved: list[str], pending: list[str]) -> str:
    """The absolute path in the root that ``resolved`` + ``pending`` leads to.

    Docker's ``FollowSymlinkInScope``: every symlink is expanded inside the root
    (an absolute target restarts at it, ``..`` stops there); components that do
    not exist are kept as they are, so a dangling link still has a target.

    :param resolved: real components (no symlinks) already resolved.
    :param pending: components still to resolve.
    """
    names = list(resolved)
    todo = list(reversed(pending))
    links = 0
    while todo:
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if names:
                names.pop()
            continue
        target = _link_at(root_fd, names, part)
        if target is None:
            names.append(part)
            continue
        links += 1
        if links > MAX_LINKS:
            raise NoSuchPath(f"/{'/'.join([*names, part])}: too many levels of symbolic links")
        if target.startswith("/"):
            names.clear()
        todo.extend(reversed(target.split("/")))
    return "/" + "/".join(names)


def _link_at(root_fd: int, names: list[str], name: str) -> str | None:
    """The target of ``names/name`` if it is a symlink (None otherwise or if missing)."""
    try:
        _, fd = walk(root_fd, names, mkdir=None, fail=OSError)
    except OSError:
        return None
    try:
        return readlink(name, fd)
    except (NotADirectoryError, FileNotFoundError):
        return None
    finally:
        os.close(fd)


def _is_dir(root_fd: int, path: str) -> bool:
    try:
        _, fd = walk(root_fd, path.split("/"), mkdir=None, fail=OSError)
    except OSError:
        return False
    os.close(fd)
    return True
