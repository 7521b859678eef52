"""Paths inside a root directory, resolved without ever leaving it.

Every component is opened with ``O_NOFOLLOW`` relative to its parent's
descriptor; symlinks met on the way are expanded *inside* the root, like
Docker's ``FollowSymlinkInScope`` (an absolute target restarts at the root,
``..`` never climbs above it).  Used to extract archives into layers and
container filesystems and to read files (``/etc/passwd``) from an image, so a
hostile image or archive can never make us touch the host.  Blocking.
"""

import errno
import os
from collections.abc import Callable, Sequence

# Linux's own limit (MAXSYMLINKS) on symlinks followed while resolving one path.
MAX_LINKS = 40
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def walk(
    root: int,
    components: Sequence[str],
    *,
    mkdir: Callable[[str, int], int] | None,
    fail: Callable[[str], Exception],
) -> tuple[list[str], int]:
    """Open the directory ``components`` names below ``root``, symlinks resolved in scope.

    Each component is opened with ``O_NOFOLLOW`` relative to its parent; a
    symlink met on the way is expanded in place (an absolute target restarts at
    ``root``, ``..`` never climbs above it), as Docker's ``FollowSymlinkInScope``.

    :param mkdir: creates and opens a missing directory; None lets
        ``FileNotFoundError`` through.
    :param fail: builds the error for a component that is not a directory, or
        for too many symlinks (given the reason).
    :returns: the real (link-free) names from ``root`` and the open descriptor of
        the last one (a duplicate of ``root`` for none); the caller closes it.
    """
    names: list[str] = []
    stack: list[int] = []
    pending = list(reversed(components))
    links = 0
    try:
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if stack:  # lexically on the resolved path; at the root ".." is the root
                    names.pop()
                    os.close(stack.pop())
                continue
            where = stack[-1] if stack else root
            try:
                fd = os.open(name, DIR_FLAGS, dir_fd=where)
            except FileNotFoundError:
                if mkdir is None:
                    raise
                fd = mkdir(name, where)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                link = readlink(name, where)
                if link is None:
                    raise fail(f"{name!r} is not a directory") from None
                links += 1
                if links > MAX_LINKS:
                    raise fail("too many levels of symbolic links") from None
                if link.startswith("/"):
                    names.clear()
                    while stack:
                        os.close(stack.pop())
                pending.extend(reversed(link.split("/")))
                continue
            names.append(name)
            stack.append(fd)
        return names, stack.pop() if stack else os.dup(root)
    finally:
        for fd in stack:
            os.close(fd)


def readlink(name: str, dir_fd: int) -> str | None:
    """The target of symlink ``name``, or None if it is something else."""
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.ENOENT):
            return None
        raise


def read_file(root: str, path: str, limit: int = 1 << 20) -> bytes | None:
    """The content of ``path`` inside ``root`` (None if missing or not a regular file)."""
    parent, _, name = path.strip("/").rpartition("/")
    root_fd = os.open(root, DIR_FLAGS)
    try:
        try:
            _, dir_fd = walk(root_fd, parent.split("/"), mkdir=None, fail=OSError)
        except OSError:
            return None
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as e:
            if e.errno == errno.ELOOP:  # a symlink: resolve it in scope
                target = readlink(name, dir_fd)
                if target is None:
                    return None
                base = target if target.startswith("/") else f"{parent}/{target}"
                return read_file(root, base, limit)
            return None
        finally:
            os.close(dir_fd)
        with os.fdopen(fd, "rb") as f:
            return f.read(limit)
    finally:
        os.close(root_fd)
