"""A container's root filesystem and the small files bind-mounted into it.

The rootfs is an overlay of the image's layer directories (top first) plus a
per-container upper dir; where the kernel has no overlayfs, the layers are
copied into a plain directory instead (vfs), whiteouts applied.  Users are
resolved in the image's own ``/etc/passwd`` and ``/etc/group``, read without
ever following a link out of the rootfs.  Blocking: call from a thread.
"""

import contextlib
import ctypes
import errno
import os
import shutil
import stat
from collections.abc import Iterable, Sequence

from attrs import frozen

from podapi.errors import InvalidArgument
from podapi.oci.host import mounts
from podapi.oci.scope import DIR_FLAGS, read_file, walk

MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)
#: Keep the upper dir a plain, diffable tree: no index, metacopy or redirect entries.
OVERLAY_FIXED_OPTIONS = "index=off,metacopy=off,redirect_dir=off"
#: The kernel takes at most one page of mount data.
MAX_MOUNT_DATA = 4095

DEFAULT_HOSTS = (
    "127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4\n"
    "::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n"
)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def mount_overlay(lowers: Sequence[str], upper: str, work: str, target: str) -> None:
    """Mount ``lowers`` (top layer first) + ``upper`` at ``target``."""
    data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},{OVERLAY_FIXED_OPTIONS}"
    if len(data) > MAX_MOUNT_DATA:
        raise InvalidArgument(f"image has too many layers for one overlay mount ({len(lowers)})")
    _check(
        _libc.mount(b"overlay", target.encode(), b"overlay", 0, data.encode()),
        f"mounting overlay on {target}",
    )


#: More mounts than this stacked on one point cannot come from us.
MAX_STACKED = 16


def unmount(target: str) -> bool:
    """Detach what is mounted at ``target``; whether there was something (else no error)."""
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):
            raise OSError(code, f"unmounting {target}: {os.strerror(code)}")
        return False
    return True


MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC = 1, 32, 4096, 16384
UMOUNT_NOFOLLOW = 8


def bind_into(root: str, destination: str, source: str, *, readonly: bool) -> str:
    """Bind ``source`` (a host path we chose) at ``destination`` inside ``root``.

    ``destination`` is resolved in scope (:func:`podapi.oci.scope.walk`): a symlink
    in the container's tree never sends the mount out of ``root``.  Missing
    directories are made, as runc makes a mount's destination, and a missing file
    is created for a file ``source``.

    :returns: the mount point's link-free host path, for :func:`unmount_bound`.
    """
    parent, _, name = destination.strip("/").rpartition("/")
    root_fd = os.open(root, DIR_FLAGS)
    try:
        names, dir_fd = walk(root_fd, parent.split("/"), mkdir=_mkdir_in, fail=_not_dir)
        try:
            if os.path.isdir(source):
                try:
                    target = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
                except FileNotFoundError:
                    target = _mkdir_in(name, dir_fd)
            else:
                target = os.open(
                    name,
                    os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o644,
                    dir_fd=dir_fd,
                )
        except OSError as e:
            raise _not_dir(f"{destination!r} cannot hold a mount: {e.strerror}") from None
        finally:
            os.close(dir_fd)
    finally:
        os.close(root_fd)
    try:
        point = f"/proc/self/fd/{target}".encode()
        _check(_libc.mount(source.encode(), point, None, MS_BIND | MS_REC, None), "bind mount")
        host_path = os.path.join(root, *names, name)
        if readonly:
            flags = MS_BIND | MS_REC | MS_REMOUNT | MS_RDONLY
            if _libc.mount(None, host_path.encode(), None, flags, None) != 0:
                code = ctypes.get_errno()
                unmount_bound(host_path)
                raise OSError(code, f"read-only remount of {destination}: {os.strerror(code)}")
        return host_path
    finally:
        os.close(target)


def unmount_bound(host_path: str) -> None:
    """Detach a mount :func:`bind_into` made (never following a link at its end)."""
    if _libc.umount2(host_path.encode(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):
            raise OSError(code, f"unmounting {host_path}: {os.strerror(code)}")


def _mkdir_in(name: str, dir_fd: int) -> int:
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o755, dir_fd=dir_fd)
    return os.open(name, DIR_FLAGS, dir_fd=dir_fd)


def _not_dir(reason: str) -> Exception:
    return InvalidArgument(f"cannot mount into the container: {reason}")


def unmount_all(target: str) -> None:
    """Detach every mount stacked on ``target`` (a crash may have left more than one)."""
    for _ in range(MAX_STACKED):
        if not unmount(target):
            return
    raise OSError(errno.EBUSY, f"unmounting {target}: more than {MAX_STACKED} mounts stacked")


def is_mounted(target: str) -> bool:
    """Whether something is mounted exactly at ``target``."""
    target = os.path.realpath(target)
    return any(m.mount_point == target for m in mounts())


def copy_layers(layers: Sequence[str], target: str) -> None:
    """vfs: flatten ``layers`` (bottom first) into ``target``, applying whiteouts.

    In a layer directory a whiteout is a 0/0 character device (delete that name
    below) and an opaque directory carries ``trusted.overlay.opaque=y`` (drop
    what lower layers had in it).
    """
    for layer in layers:
        for directory, dirnames, filenames in os.walk(layer):
            relative = os.path.relpath(directory, layer)
            dest_dir = os.path.normpath(os.path.join(target, relative))
            if relative != "." and _opaque(directory) and os.path.isdir(dest_dir):
                shutil.rmtree(dest_dir)
            os.makedirs(dest_dir, exist_ok=True)
            shutil.copystat(directory, dest_dir, follow_symlinks=False)
            for name in [
                *filenames,
                *(d for d in dirnames if os.path.islink(os.path.join(directory, d))),
            ]:
                source = os.path.join(directory, name)
                dest = os.path.join(dest_dir, name)
                info = os.lstat(source)
                if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                    _remove(dest)
                    continue
                _remove(dest)
                if stat.S_ISLNK(info.st_mode):
                    os.symlink(os.readlink(source), dest)
                elif stat.S_ISREG(info.st_mode):
                    shutil.copy2(source, dest, follow_symlinks=False)
                else:
                    os.mknod(dest, info.st_mode, info.st_rdev)
                os.lchown(dest, info.st_uid, info.st_gid)


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


@frozen
class User:
    """A resolved process user."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


def _entries(rootfs: str, path: str) -> list[list[str]]:
    data = read_file(rootfs, path)
    if data is None:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return [line.split(":") for line in lines if line and not line.startswith("#")]


def resolve_user(rootfs: str, spec: str, extra_groups: Iterable[str] = ()) -> User:
    """Docker's user rules: ``""`` is root; ``name``, ``uid``, ``name:group``, ``uid:gid``.

    Names must exist in the image; numeric IDs need not.  The user's groups from
    ``/etc/group`` and ``extra_groups`` (``--group-add``) become additional GIDs.
    """
    user, _, group = (spec or "0").partition(":")
    passwd = _entries(rootfs, "etc/passwd")
    uid: int | None = None
    gid = 0
    home = "/"
    name = ""
    for fields in passwd:
        if len(fields) >= 6 and (fields[0] == user or (user.isdigit() and fields[2] == user)):
            name, uid, gid, home = fields[0], int(fields[2]), int(fields[3]), fields[5]
            break
    if uid is None:
        if not user.isdigit():
            raise InvalidArgument(
                f"unable to find user {user}: no matching entries in passwd file",
                cause="no such user",
            )
        uid = int(user)
        home = "/root" if uid == 0 else "/"
    groups = _entries(rootfs, "etc/group")

    def group_id(value: str) -> int:
        if value.isdigit():
            return int(value)
        for fields in groups:
            if len(fields) >= 3 and fields[0] == value:
                return int(fields[2])
        raise InvalidArgument(
            f"unable to find group {value}: no matching entries in group file",
            cause="no such group",
        )

    if group:
        gid = group_id(group)
    extra = [group_id(g) for g in extra_groups]
    member = [
        int(f[2])
        for f in groups
        if len(f) >= 4 and name and name in f[3].split(",") and f[2].isdigit()
    ]
    additional = tuple(dict.fromkeys(g for g in [*member, *extra] if g != gid))
    return User(uid=uid, gid=gid, additional_gids=additional, home=home)


def write_file(path: str, content: str, mode: int = 0o644) -> None:
    """Write a small file atomically (hosts, hostname, resolv.conf)."""
    temp = path + ".tmp"
    with open(temp, "w", encoding="utf-8") as f:
        f.write(content)
    os.chmod(temp, mode)
    os.replace(temp, path)


def hosts_file(
    hostname: str,
    name: str,
    extra: Sequence[str],
    host_network: bool,
    addresses: Sequence[str] = (),
) -> str:
    """``/etc/hosts``: localhost, the container's own name (on its addresses), ``--add-host``."""
    if host_network:
        try:
            with open("/etc/hosts", encoding="utf-8") as f:
                base = f.read()
        except OSError:
            base = DEFAULT_HOSTS
    else:
        own = "".join(f"{address}\t{hostname} {name}\n" for address in addresses or ["127.0.1.1"])
        base = DEFAULT_HOSTS + own
    lines = []
    for entry in extra:
        host, sep, address = entry.partition(":")
        if not sep or not host or not address:
            raise InvalidArgument(f"invalid extra host {entry!r}: use host:ip")
        lines.append(f"{address}\t{host}\n")
    return base + "".join(lines)


#: Where a container's DNS goes when the host's resolvers are loopback-only (Docker's).
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


def resolv_conf(
    servers: Sequence[str],
    search: Sequence[str],
    options: Sequence[str],
    *,
    network_servers: Sequence[str] = (),
    network_search: Sequence[str] = (),
    own_network: bool = True,
) -> str:
    """``/etc/resolv.conf``: the host's, adapted to the container.

    In a network namespace of its own a container cannot reach the host's
    loopback resolvers (systemd-resolved): those lines go.  A network with DNS
    (aardvark-dns) puts its servers first and its search domain in front;
    ``--dns*`` options override everything.
    """
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as f:
            host = f.read().splitlines()
    except OSError:
        host = []
    keep = [line for line in host if line.strip() and not line.startswith("#")]
    if own_network:
        keep = [line for line in keep if not _loopback_nameserver(line)]
    chosen = list(servers) or list(network_servers)
    if chosen:
        keep = [line for line in keep if not line.startswith("nameserver")]
        keep += [f"nameserver {s}" for s in chosen]
    elif own_network and not any(line.startswith("nameserver") for line in keep):
        keep += [f"nameserver {s}" for s in FALLBACK_NAMESERVERS]
    host_search = [
        domain for line in keep if line.startswith("search") for domain in line.split()[1:]
    ]
    domains = list(search) or [*network_search, *host_search]
    if domains:
        keep = [line for line in keep if not line.startswith(("search", "domain"))]
        keep.append("search " + " ".join(dict.fromkeys(domains)))
    if options:
        keep = [line for line in keep if not line.startswith("options")]
        keep.append("options " + " ".join(options))
    return "\n".join(keep) + "\n" if keep else ""


def _loopback_nameserver(line: str) -> bool:
    fields = line.split()
    return (
        len(fields) >= 2
        and fields[0] == "nameserver"
        and (fields[1].startswith("127.") or fields[1] == "::1")
    )


CHANGED, ADDED, DELETED = 0, 1, 2


def changes(upper: str, lowers: Sequence[str]) -> list[tuple[str, int]]:
    """What a container changed, from its overlay upper dir.

    A 0/0 character device is a deletion; an entry that exists in a lower
    layer is a change, otherwise an addition.  An opaque directory's lower
    children count as deleted.
    """
    found: list[tuple[str, int]] = []

    def in_lowers(relative: str) -> bool:
        return any(os.path.lexists(os.path.join(lower, relative)) for lower in lowers)

    for directory, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            full = os.path.join(directory, name)
            relative = os.path.relpath(full, upper)
            info = os.lstat(full)
            if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                found.append(("/" + relative, DELETED))
                continue
            found.append(("/" + relative, CHANGED if in_lowers(relative) else ADDED))
            if stat.S_ISDIR(info.st_mode) and _opaque(full):
                present = set(os.listdir(full))
                for lower in lowers:
                    below = os.path.join(lower, relative)
                    if os.path.isdir(below):
                        found += [
                            ("/" + os.path.join(relative, child), DELETED)
                            for child in sorted(os.listdir(below))
                            if child not in present
                        ]
    return found


def tree_size(path: str) -> int:
    """Bytes in the regular files below ``path`` (hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total
