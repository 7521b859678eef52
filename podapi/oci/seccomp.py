"""Converting a Docker/moby-format seccomp profile into the OCI ``linux.seccomp`` object.

runc silently accepts the raw profile but ignores ``archMap``, ``includes`` and
``excludes``, loading every conditional rule.
:func:`convert` resolves them for one architecture, kernel and capability list,
as Podman (containers/common ``pkg/seccomp``) does; for the 14-capability set its
output equals Podman 4.3.1's rule for rule.
"""

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from podapi.errors import InvalidArgument

#: Go architecture names to libseccomp's (moby ``nativeToSeccomp``).
GO_TO_SECCOMP: dict[str, str] = {
    "386": "SCMP_ARCH_X86",
    "amd64": "SCMP_ARCH_X86_64",
    "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64",
    "mips": "SCMP_ARCH_MIPS",
    "mips64": "SCMP_ARCH_MIPS64",
    "mips64n32": "SCMP_ARCH_MIPS64N32",
    "mipsel": "SCMP_ARCH_MIPSEL",
    "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mipsel64n32": "SCMP_ARCH_MIPSEL64N32",
    "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "riscv64": "SCMP_ARCH_RISCV64",
    "s390": "SCMP_ARCH_S390",
    "s390x": "SCMP_ARCH_S390X",
}

#: Where containers-common installs the default profile; the first that exists wins.
DEFAULT_PATHS = ("/usr/share/containers/seccomp.json", "/etc/containers/seccomp.json")

#: Top-level keys copied through unchanged when present.
_COPIED = ("defaultErrnoRet", "flags", "listenerPath", "listenerMetadata")

_VERSION = re.compile(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def _version(text: str) -> tuple[int, int, int]:
    match = _VERSION.match(text)
    if match is None:
        raise InvalidArgument(f"invalid kernel version {text!r} in seccomp profile")
    major, minor, patch = (int(part or 0) for part in match.groups())
    return major, minor, patch


def _kernel_at_least(kernel: str, minimum: str) -> bool:
    return _version(kernel) >= _version(minimum)


def _architectures(profile: Mapping[str, Any], go_arch: str) -> list[str]:
    # A profile lists either plain ``architectures`` (old format) or an ``archMap``.
    result = list(profile.get("architectures") or ())
    native = GO_TO_SECCOMP.get(go_arch)
    for entry in profile.get("archMap") or ():
        if native is not None and entry.get("architecture") == native:
            result.append(native)
            result.extend(entry.get("subArchitectures") or ())
            break
    return result


def _applies(rule: Mapping[str, Any], caps: frozenset[str], go_arch: str, kernel: str) -> bool:
    includes = rule.get("includes") or {}
    excludes = rule.get("excludes") or {}
    if go_arch in (excludes.get("arches") or ()):
        return False
    if any(cap in caps for cap in excludes.get("caps") or ()):
        return False
    if excludes.get("minKernel") and _kernel_at_least(kernel, excludes["minKernel"]):
        return False
    arches = includes.get("arches") or ()
    if arches and go_arch not in arches:
        return False
    if not all(cap in caps for cap in includes.get("caps") or ()):
        return False
    return not (includes.get("minKernel") and not _kernel_at_least(kernel, includes["minKernel"]))


def _argument(arg: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"index": arg["index"], "value": arg.get("value", 0)}
    # Podman leaves out a zero valueTwo; runc reads either form the same.
    if arg.get("valueTwo"):
        out["valueTwo"] = arg["valueTwo"]
    out["op"] = arg["op"]
    return out


def _syscall(rule: Mapping[str, Any]) -> dict[str, Any]:
    names = list(rule.get("names") or ())
    if rule.get("name"):
        # The deprecated single ``name`` (moby rejects a rule with both).
        if names:
            raise InvalidArgument("seccomp rule uses both 'name' and 'names'")
        names = [rule["name"]]
    out: dict[str, Any] = {"names": names, "action": rule["action"]}
    if rule.get("errnoRet") is not None:
        out["errnoRet"] = rule["errnoRet"]
    if rule.get("args"):
        out["args"] = [_argument(arg) for arg in rule["args"]]
    return out


def convert(
    profile: Mapping[str, Any], capabilities: Iterable[str], *, go_arch: str, kernel: str
) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object for one container.

    :param profile: a Docker-format profile (``/usr/share/containers/seccomp.json``).
    :param capabilities: the container's final capability list (``CAP_...`` names).
    :param go_arch: this machine's Go architecture (``amd64``): profiles gate
        rules on Go names, and ``archMap`` is looked up by its libseccomp name.
    :param kernel: the running kernel's release (``6.1.0-18-amd64``), for ``minKernel``.
    :raises InvalidArgument: for a malformed ``minKernel`` or rule.
    """
    caps = frozenset(capabilities)
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    architectures = _architectures(profile, go_arch)
    if architectures:
        out["architectures"] = architectures
    for key in _COPIED:
        if profile.get(key) is not None:
            out[key] = profile[key]
    out["syscalls"] = [
        _syscall(rule)
        for rule in profile.get("syscalls") or ()
        if _applies(rule, caps, go_arch, kernel)
    ]
    return out


def load_default(paths: Sequence[str] = DEFAULT_PATHS) -> Mapping[str, Any] | None:
    """The first profile found in ``paths``; ``None`` when there is none (no filter)."""
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                loaded = json.load(f)
        except FileNotFoundError:
            continue
        except ValueError as e:
            raise InvalidArgument(f"invalid seccomp profile {path}: {e}") from e
        if not isinstance(loaded, Mapping):
            raise InvalidArgument(f"invalid seccomp profile {path}: not a JSON object")
        return loaded
    return None


class Converter:
    """A profile converted once per capability set.

    Containers mostly share a handful of capability lists, so the conversion
    (a walk over ~400 names) is cached; results are shared and must not be
    mutated, hence the read-only return type.
    """

    def __init__(
        self, profile: Mapping[str, Any], *, go_arch: str, kernel: str, maxsize: int = 32
    ) -> None:
        self.profile = profile
        self.go_arch = go_arch
        self.kernel = kernel
        self._cached = functools.lru_cache(maxsize=maxsize)(self._convert)

    def _convert(self, capabilities: frozenset[str]) -> Mapping[str, Any]:
        return convert(self.profile, capabilities, go_arch=self.go_arch, kernel=self.kernel)

    def for_capabilities(self, capabilities: Iterable[str]) -> Mapping[str, Any]:
        """The converted profile for this capability set (cached by the set)."""
        return self._cached(frozenset(capabilities))
