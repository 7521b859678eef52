"""Dockerfile instructions applied to an image config (``docker import -c``, ``commit -c``).

Supported as Docker does for ``--change``: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR.  JSON (exec) form and shell form
are both accepted; shell form of CMD/ENTRYPOINT becomes ``/bin/sh -c "..."``.
"""

import json
import shlex
from collections.abc import Iterable
from typing import Any

from podapi.errors import InvalidArgument

SUPPORTED = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)


def _exec_or_shell(value: str) -> list[str]:
    stripped = value.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
            return parsed
    return ["/bin/sh", "-c", stripped]


def _pairs(value: str, instruction: str) -> list[tuple[str, str]]:
    """``KEY=VALUE ...`` pairs, or the old ``KEY VALUE`` form."""
    words = shlex.split(value)
    if not words:
        raise InvalidArgument(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        key, _, rest = value.strip().partition(" ")
        return [(key, rest.strip())]
    pairs = []
    for word in words:
        key, sep, val = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{instruction}: {word!r} is not KEY=VALUE")
        pairs.append((key, val))
    return pairs


def apply_changes(config: dict[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """Return ``config`` (an image's ``config`` section) with each instruction applied."""
    result = json.loads(json.dumps(config))
    for raw in changes:
        change = raw.strip()
        if not change:
            continue
        instruction, _, value = change.partition(" ")
        instruction = instruction.upper()
        if "=" in instruction and not value:  # "CMD=..." as Podman also accepts
            instruction, _, value = change.partition("=")
            instruction = instruction.upper()
        if instruction not in SUPPORTED:
            raise InvalidArgument(
                f"{instruction} is not a valid change instruction (one of {', '.join(SUPPORTED)})"
            )
        value = value.strip()
        if instruction in ("CMD", "ENTRYPOINT"):
            key = "Cmd" if instruction == "CMD" else "Entrypoint"
            result[key] = _exec_or_shell(value)
        elif instruction == "ENV":
            env = [e for e in result.get("Env") or []]
            for key, val in _pairs(value, "ENV"):
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={val}"]
            result["Env"] = env
        elif instruction == "LABEL":
            labels = dict(result.get("Labels") or {})
            labels.update(_pairs(value, "LABEL"))
            result["Labels"] = labels
        elif instruction == "EXPOSE":
            ports = dict(result.get("ExposedPorts") or {})
            for port in value.split():
                ports[port if "/" in port else f"{port}/tcp"] = {}
            result["ExposedPorts"] = ports
        elif instruction == "VOLUME":
            volumes = dict(result.get("Volumes") or {})
            paths = _exec_or_shell(value) if value.startswith("[") else value.split()
            volumes.update({p: {} for p in paths if p not in ("/bin/sh", "-c")})
            result["Volumes"] = volumes
        elif instruction == "ONBUILD":
            result["OnBuild"] = [*(result.get("OnBuild") or []), value]
        else:
            key = {"STOPSIGNAL": "StopSignal", "USER": "User", "WORKDIR": "WorkingDir"}[instruction]
            if not value:
                raise InvalidArgument(f"{instruction} requires an argument")
            result[key] = value
    return result
