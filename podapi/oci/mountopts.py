"""Mount options: Docker's bind strings, Podman's option rules, and host mounts of volumes.

* :func:`parse_bind` reads Docker's ``HostConfig.Binds`` entries
  (``src:dst[:mode]``; moby ``volume/mounts/linux_parser.go`` ``ParseMountRaw``).
* :func:`process_options` is Podman's ``util.ProcessOptions``
  (``pkg/util/mountOpts.go``): it refuses duplicates and unknown options and
  adds the defaults (``rw``, ``rprivate``, ``nosuid``/``nodev``/``noexec`` as
  the source's file system has them, ``rbind`` or ``tmpcopyup``).
* :func:`mount` mounts a volume that has driver options (a tmpfs, a bind of a
  host directory) on its ``_data`` directory with ``mount(2)``; the options
  string is split into flags and file system data as ``mount(8)`` does.

Blocking (statfs, mount): call from a thread.
"""

import ctypes
import os
import posixpath
import re
from collections.abc import Sequence

from attrs import frozen

from podapi.errors import InvalidArgument

PROPAGATIONS = frozenset(
    {"private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"}
)
#: Options that mean something to us, not to the OCI runtime.
NOT_FOR_RUNTIME = frozenset({"copy", "nocopy", "z", "Z"})
#: Docker's and Podman's name rule for volumes (``[a-zA-Z0-9][a-zA-Z0-9_.-]+``).
_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _NAME_FIRST | frozenset("_.-")

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS = 1, 2, 4, 8, 16
MS_REMOUNT, MS_DIRSYNC, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 128, 1024, 2048, 4096
MS_REC, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 21, 1 << 24
#: ``mount(8)`` option words that are flags: name -> (flag, set it?).
_FLAG_WORDS: dict[str, tuple[int, bool]] = {
    "ro": (MS_RDONLY, True),
    "rw": (MS_RDONLY, False),
    "nosuid": (MS_NOSUID, True),
    "suid": (MS_NOSUID, False),
    "nodev": (MS_NODEV, True),
    "dev": (MS_NODEV, False),
    "noexec": (MS_NOEXEC, True),
    "exec": (MS_NOEXEC, False),
    "sync": (MS_SYNCHRONOUS, True),
    "async": (MS_SYNCHRONOUS, False),
    "dirsync": (MS_DIRSYNC, True),
    "noatime": (MS_NOATIME, True),
    "atime": (MS_NOATIME, False),
    "nodiratime": (MS_NODIRATIME, True),
    "diratime": (MS_NODIRATIME, False),
    "relatime": (MS_RELATIME, True),
    "norelatime": (MS_RELATIME, False),
    "strictatime": (MS_STRICTATIME, True),
    "bind": (MS_BIND, True),
    "rbind": (MS_BIND | MS_REC, True),
}
_libc = ctypes.CDLL(None, use_errno=True)
#: A tmpfs ``size=`` the kernel takes (``memparse`` suffixes, or a percentage of RAM).
TMPFS_SIZE = re.compile(r"\d+[kKmMgGtTpPeE%]?")
_TMPFS_MODE = re.compile(r"[0-7]{1,4}")


def valid_volume_name(name: str) -> bool:
    """Whether ``name`` follows the volume name rule (two characters at least)."""
    return len(name) >= 2 and name[0] in _NAME_FIRST and all(c in _NAME_REST for c in name[1:])


def check_volume_name(name: str) -> str:
    """Docker's message for a volume name the local driver refuses."""
    if not valid_volume_name(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path",
            cause="invalid volume name",
        )
    return name


@frozen
class BindString:
    """One ``HostConfig.Binds`` entry, parsed.

    :ivar source: a host path (a bind), a volume name, or "" (an anonymous volume).
    :ivar options: the mode's words other than ``ro``/``rw``.
    """

    source: str
    destination: str
    readonly: bool
    options: tuple[str, ...]

    @property
    def is_bind(self) -> bool:
        """A host path rather than a volume."""
        return self.source.startswith("/")


def _mode_words(mode: str) -> list[str] | None:
    """The words of a valid Docker mount mode, or None (moby ``ValidMountMode``)."""
    if not mode:
        return []
    words = mode.split(",")
    groups = (frozenset({"rw", "ro"}), frozenset({"z", "Z"}), PROPAGATIONS, frozenset({"nocopy"}))
    seen = [0] * len(groups)
    for word in words:
        for index, group in enumerate(groups):
            if word in group:
                seen[index] += 1
                break
        else:
            return None
    return None if any(count > 1 for count in seen) else words


def check_destination(destination: str) -> str:
    """A mount destination: absolute, not ``/``; returned cleaned."""
    if not destination.startswith("/"):
        raise InvalidArgument(
            f"invalid mount config: invalid mount path: '{destination}' mount path must be "
            "absolute",
            cause="invalid mount path",
        )
    clean = posixpath.normpath(destination)
    if clean in ("/", "//"):
        raise InvalidArgument(
            "invalid specification: destination can't be '/'", cause="invalid mount path"
        )
    return clean


def parse_bind(text: str) -> BindString:
    """``src:dst[:mode]`` (or just ``dst``: an anonymous volume), as Docker reads it."""
    parts = text.split(":")
    invalid = InvalidArgument(
        f"invalid volume specification: '{text}'", cause="invalid volume specification"
    )
    if not parts[0] or len(parts) > 3 or any(not p for p in parts[:2]):
        raise invalid
    if len(parts) == 1:
        return BindString("", check_destination(parts[0]), False, ())
    if len(parts) == 2 and _mode_words(parts[1]):
        raise invalid  # "/foo:rw": a mode but no destination
    mode = parts[2] if len(parts) == 3 else ""
    words = _mode_words(mode)
    if words is None:
        raise InvalidArgument(f"invalid mode: {mode}", cause="invalid mode")
    source = parts[0]
    if source.startswith("/"):
        if "nocopy" in words:
            raise InvalidArgument(f"invalid mode: {mode}: nocopy is only for volumes")
        source = posixpath.normpath(source)
    else:
        check_volume_name(source)
    return BindString(
        source=source,
        destination=check_destination(parts[1]),
        readonly="ro" in words,
        options=tuple(w for w in words if w not in ("ro", "rw")),
    )


def _source_defaults(source: str) -> tuple[bool, bool, bool]:
    """``(noexec, nosuid, nodev)`` a mount inherits: its source's file system's, or Podman's."""
    if not source:
        return False, True, True
    try:
        flags = os.statvfs(source).f_flag
    except OSError as e:
        raise InvalidArgument(f"statfs {source}: {e.strerror}") from None
    return bool(flags & os.ST_NOEXEC), bool(flags & os.ST_NOSUID), bool(flags & os.ST_NODEV)


def process_options(options: Sequence[str], *, tmpfs: bool, source: str = "") -> tuple[str, ...]:
    """Podman's ``ProcessOptions``: checked options plus the defaults a mount gets.

    :param tmpfs: a tmpfs (``size``, ``mode``, ``tmpcopyup`` allowed; no ``bind``).
    :param source: a bind mount's host path: its file system's ``noexec``,
        ``nosuid`` and ``nodev`` are kept; "" (volumes, tmpfs): ``nosuid,nodev``.
    :raises InvalidArgument: an unknown or repeated option.
    """
    groups = {
        "copy": "copy",
        "nocopy": "copy",
        "exec": "exec",
        "noexec": "exec",
        "suid": "suid",
        "nosuid": "suid",
        "dev": "dev",
        "nodev": "dev",
        "rw": "write",
        "ro": "write",
        "bind": "bind",
        "rbind": "bind",
        "z": "label",
        "Z": "label",
        "size": "size",
        "mode": "mode",
        "tmpcopyup": "copyup",
        "notmpcopyup": "copyup",
        **dict.fromkeys(PROPAGATIONS, "propagation"),
    }
    tmpfs_only = {"size", "mode", "copyup"}
    found: set[str] = set()
    result: list[str] = []
    for option in options:
        key = option.partition("=")[0]
        if key == "consistency":
            continue  # macOS's; Docker and Podman ignore it
        group = groups.get(key)
        if group is None:
            raise InvalidArgument(f"unknown mount option {option!r}: invalid mount option")
        if group in tmpfs_only and not tmpfs:
            raise InvalidArgument(
                f"the {key!r} option is only allowed with tmpfs mounts: invalid mount option"
            )
        if group in ("bind", "label") and tmpfs:
            raise InvalidArgument(
                f"the {key!r} option is not allowed with tmpfs mounts: invalid mount option"
            )
        if group in found:
            raise InvalidArgument(
                f"{option!r} conflicts with an earlier option: duplicate mount option passed"
            )
        _check_value(key, option.partition("=")[2])
        found.add(group)
        if option != "notmpcopyup":  # not for the runtime
            result.append(option)
    noexec, nosuid, nodev = _source_defaults(source)
    for group, default, wanted in (
        ("write", "rw", True),
        ("propagation", "rprivate", True),
        ("exec", "noexec", noexec),
        ("suid", "nosuid", nosuid),
        ("dev", "nodev", nodev),
        ("copyup", "tmpcopyup", tmpfs),
        ("bind", "rbind", not tmpfs),
    ):
        if wanted and group not in found:
            result.append(default)
    return tuple(result)


def _check_value(key: str, value: str) -> None:
    """A tmpfs ``size``/``mode`` the kernel would refuse is a 400 now, not a failed start."""
    pattern = {"size": TMPFS_SIZE, "mode": _TMPFS_MODE}.get(key)
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidArgument(f"invalid tmpfs option {key}={value!r}: invalid mount option")


def for_runtime(options: Sequence[str]) -> list[str]:
    """The options an OCI runtime is given (without ours: copy modes, SELinux labels)."""
    return [o for o in options if o not in NOT_FOR_RUNTIME]


def propagation(options: Sequence[str]) -> str:
    """The propagation mode among ``options`` ("" when none)."""
    return next((o for o in options if o in PROPAGATIONS), "")


def split_options(options: str) -> tuple[int, str]:
    """``mount -o`` text as ``mount(2)`` flags and the file system's own data."""
    flags = 0
    data = []
    for word in filter(None, options.split(",")):
        known = _FLAG_WORDS.get(word)
        if known is None:
            data.append(word)
        elif known[1]:
            flags |= known[0]
        else:
            flags &= ~known[0]
    return flags, ",".join(data)


def mount(device: str, target: str, fstype: str, options: str) -> None:
    """Mount ``device`` (a host directory for a bind) on ``target`` with ``mount -o`` options.

    A read-only bind takes two calls: the kernel ignores ``MS_RDONLY`` on the
    first one.
    """
    flags, data = split_options(options)
    if fstype in ("bind", "none", ""):
        fstype, flags = "none", flags | MS_BIND
    _mount(device, target, fstype, flags & ~MS_RDONLY if flags & MS_BIND else flags, data)
    if flags & MS_BIND and flags & MS_RDONLY:
        _mount("none", target, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, "")


def _mount(device: str, target: str, fstype: str, flags: int, data: str) -> None:
    result = _libc.mount(device.encode(), target.encode(), fstype.encode(), flags, data.encode())
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mounting {device} on {target}: {os.strerror(code)}")
