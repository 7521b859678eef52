"""``registries.conf`` (containers-registries.conf(5)), version 2 and the old version 1.

Read from ``$CONTAINERS_REGISTRIES_CONF`` or ``/etc/containers/registries.conf``
plus the drop-ins in ``registries.conf.d`` (later files override earlier keys;
``[[registry]]`` tables with the same prefix are replaced).  Loading reads
files: call it from a thread or at start-up.
"""

import glob
import os
import tomllib
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

DEFAULT_PATH = "/etc/containers/registries.conf"
SHORT_NAME_MODES = ("enforcing", "permissive", "disabled")


@frozen
class Mirror:
    """A pull-through location tried before the registry itself."""

    location: str
    insecure: bool = False
    pull_from_mirror: str = "all"


@frozen
class Registry:
    """One ``[[registry]]`` table."""

    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[Mirror, ...] = ()

    def matches(self, reference: str) -> int:
        """Length of the matched prefix for ``reference`` (0: no match)."""
        prefix = self.prefix
        if prefix.startswith("*."):
            host = reference.split("/", 1)[0]
            return len(prefix) if host.endswith(prefix[1:]) else 0
        if reference == prefix:
            return len(prefix)
        if reference.startswith(prefix) and reference[len(prefix)] in "/:@":
            return len(prefix)
        return 0

    def rewrite(self, reference: str) -> str:
        """``reference`` with the matched prefix replaced by ``location``."""
        if self.prefix.startswith("*."):
            return reference
        return self.location + reference[len(self.prefix) :]


@frozen
class RegistriesConfig:
    """The merged configuration."""

    unqualified_search: tuple[str, ...] = ()
    short_name_mode: str = "enforcing"
    registries: tuple[Registry, ...] = ()
    aliases: Mapping[str, str] = field(factory=dict)
    sources: tuple[str, ...] = ()

    def find(self, reference: str) -> Registry | None:
        """The ``[[registry]]`` whose prefix matches ``reference`` best."""
        best: tuple[int, Registry | None] = (0, None)
        for registry in self.registries:
            score = registry.matches(reference)
            if score > best[0]:
                best = (score, registry)
        return best[1]


def _registry_from_table(table: Mapping[str, Any]) -> Registry:
    location = str(table.get("location", ""))
    prefix = str(table.get("prefix") or location)
    if not prefix:
        raise ValueError("[[registry]] needs a prefix or a location")
    mirrors = tuple(
        Mirror(
            location=str(m["location"]),
            insecure=bool(m.get("insecure", False)),
            pull_from_mirror=str(m.get("pull-from-mirror", "all")),
        )
        for m in table.get("mirror", [])
    )
    return Registry(
        prefix=prefix,
        location=location or prefix,
        insecure=bool(table.get("insecure", False)),
        blocked=bool(table.get("blocked", False)),
        mirrors=mirrors,
    )


def _merge(into: dict[str, Any], data: Mapping[str, Any]) -> None:
    """Apply one file's content (v1 or v2) onto the accumulated settings."""
    v1 = data.get("registries")
    if isinstance(v1, Mapping):
        # Version 1: [registries.search] / [registries.insecure] / [registries.block].
        search = v1.get("search", {}).get("registries")
        if search is not None:
            into["search"] = [str(s) for s in search]
        for key, attr in (("insecure", "insecure"), ("block", "blocked")):
            for host in v1.get(key, {}).get("registries", []):
                reg = into["registries"].get(host) or Registry(prefix=host, location=host)
                into["registries"][host] = Registry(
                    prefix=reg.prefix,
                    location=reg.location,
                    insecure=reg.insecure or attr == "insecure",
                    blocked=reg.blocked or attr == "blocked",
                    mirrors=reg.mirrors,
                )
    if "unqualified-search-registries" in data:
        into["search"] = [str(s) for s in data["unqualified-search-registries"]]
    if "short-name-mode" in data:
        mode = str(data["short-name-mode"])
        if mode not in SHORT_NAME_MODES:
            raise ValueError(f"invalid short-name-mode {mode!r}")
        into["mode"] = mode
    for table in data.get("registry", []):
        registry = _registry_from_table(table)
        into["registries"][registry.prefix] = registry
    for alias, target in data.get("aliases", {}).items():
        into["aliases"][str(alias)] = str(target)


def load(path: str | None = None, env: Mapping[str, str] | None = None) -> RegistriesConfig:
    """Load and merge the configuration (blocking).

    :raises ValueError: for a file that is not valid TOML or not a valid config.
    """
    env = os.environ if env is None else env
    main = path or env.get("CONTAINERS_REGISTRIES_CONF") or DEFAULT_PATH
    files = [main]
    dropin_dir = os.path.join(os.path.dirname(main), "registries.conf.d")
    if path is None and "CONTAINERS_REGISTRIES_CONF" not in env:
        files += sorted(glob.glob(os.path.join(dropin_dir, "*.conf")))
    merged: dict[str, Any] = {"search": [], "mode": "enforcing", "registries": {}, "aliases": {}}
    sources = []
    for name in files:
        try:
            with open(name, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            continue
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{name}: {e}") from e
        _merge(merged, data)
        sources.append(name)
    return RegistriesConfig(
        unqualified_search=tuple(merged["search"]),
        short_name_mode=merged["mode"],
        registries=tuple(merged["registries"].values()),
        aliases=merged["aliases"],
        sources=tuple(sources),
    )
