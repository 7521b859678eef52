"""Choosing the OCI runtime and probing helper versions (once, then cached).

Versions come from running the binaries (``runc --version``) and the Debian
package that owns them (``dpkg-query``), as ``podman info`` shows them.  The
probe runs once at start-up in the background; requests await its result.
"""

import shutil
from collections.abc import Callable, Sequence

from attrs import frozen

from podapi.oci.cgroups import CgroupMode
from podapi.oci.process import Runner

#: Runtimes in order of preference: crun is faster, runc works everywhere.
RUNTIME_PREFERENCE = ("crun", "runc")
#: Where Debian puts helpers that are not on PATH.
HELPER_DIRS = ("/usr/libexec/podman", "/usr/lib/podman", "/usr/local/libexec/podman")


@frozen
class Component:
    """A helper binary podapi drives."""

    name: str
    path: str
    version: str
    package: str

    @property
    def first_line(self) -> str:
        """The version banner's first line (``conmon version 2.1.6``)."""
        return self.version.splitlines()[0] if self.version else ""


@frozen
class RuntimeChoice:
    """The OCI runtime selected for this host and why."""

    name: str
    path: str
    reason: str


def find_binary(
    name: str,
    which: Callable[[str], str | None] = shutil.which,
    extra_dirs: Sequence[str] = HELPER_DIRS,
) -> str | None:
    """``name`` on PATH or in the helper directories Podman uses."""
    found = which(name)
    if found:
        return found
    for directory in extra_dirs:
        candidate = which(f"{directory}/{name}")
        if candidate:
            return candidate
    return None


def choose_runtime(
    requested: str | None,
    mode: CgroupMode,
    which: Callable[[str], str | None] = shutil.which,
) -> RuntimeChoice | None:
    """Pick the OCI runtime: the requested one, else crun unless the host is hybrid.

    crun refuses hybrid cgroup hierarchies ("cgroups in hybrid mode not
    supported"); runc handles them, so it is the fallback there.
    """
    if requested:
        path = requested if "/" in requested else which(requested)
        if path is None:
            return None
        name = requested.rsplit("/", 1)[-1]
        return RuntimeChoice(name=name, path=path, reason="requested with --runtime")
    for name in RUNTIME_PREFERENCE:
        if name == "crun" and mode is CgroupMode.HYBRID:
            continue
        path = which(name)
        if path is not None:
            reason = (
                "preferred"
                if name == RUNTIME_PREFERENCE[0]
                else (
                    "crun does not support hybrid cgroups"
                    if mode is CgroupMode.HYBRID
                    else "crun not installed"
                )
            )
            return RuntimeChoice(name=name, path=path, reason=reason)
    return None


async def debian_package(runner: Runner, path: str) -> str:
    """``name_version_arch`` of the package owning ``path``, or ``Unknown``."""
    try:
        owner = await runner.run(["dpkg-query", "-S", path], timeout=10)
    except FileNotFoundError:  # not a Debian system
        return "Unknown"
    if not owner.ok:
        return "Unknown"
    package = owner.stdout.decode().split(":", 1)[0].strip()
    fmt = "${Package}_${Version}_${Architecture}"
    described = await runner.run(["dpkg-query", "-W", "-f", fmt, package], timeout=10)
    return described.stdout.decode().strip() if described.ok else "Unknown"


async def probe_component(
    runner: Runner, name: str, path: str, version_args: Sequence[str] = ("--version",)
) -> Component:
    """Run ``path --version`` and look up its package."""
    try:
        result = await runner.run([path, *version_args], timeout=10)
    except FileNotFoundError:
        return Component(name=name, path=path, version="", package="Unknown")
    version = (result.stdout or result.stderr).decode("utf-8", "replace").strip()
    package = await debian_package(runner, path)
    return Component(name=name, path=path, version=version, package=package)
