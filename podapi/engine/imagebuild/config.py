"""The metadata instructions applied to an image ``config`` section, as Docker's
classic builder applies them (moby ``builder/dockerfile/dispatchers.go``).

Each function takes the section and the instruction's expanded words and
returns the new section; none touches the filesystem.  The ``created_by`` text
of the history entries (``/bin/sh -c #(nop)  ENV A=1``) is :func:`nop`.
"""

import json
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from podapi.engine.imagebuild import words
from podapi.engine.imagebuild.dockerfile import DockerfileError, Instruction
from podapi.engine.times import parse_go_duration
from podapi.errors import InvalidArgument

Section = dict[str, Any]
DEFAULT_SHELL = ("/bin/sh", "-c")
_DURATION_FLAGS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod"}


def nop(text: str) -> str:
    """Docker's ``created_by`` of an instruction that runs nothing."""
    return f"/bin/sh -c #(nop)  {text}"


def json_words(value: str) -> list[str] | None:
    """The exec (JSON array of strings) form of ``value``, or None for the shell form."""
    stripped = value.strip()
    if not stripped.startswith("["):
        return None
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return None
    if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
        return parsed
    return None


def command_line(section: Mapping[str, Any], value: str) -> list[str]:
    """RUN/CMD/ENTRYPOINT's argv: the exec form as written, or the shell form under SHELL."""
    exec_form = json_words(value)
    if exec_form is not None:
        return exec_form
    return [*(section.get("Shell") or DEFAULT_SHELL), value]


def env_map(section: Mapping[str, Any]) -> dict[str, str]:
    """The section's ``Env`` as a mapping (later entries win)."""
    return dict(e.partition("=")[::2] for e in section.get("Env") or [])


def apply(section: Section, ins: Instruction, env: Mapping[str, str], cmd_set: bool) -> Section:
    """``section`` with the metadata instruction ``ins`` applied; ``env`` expands words.

    :param cmd_set: CMD was given in this stage (ENTRYPOINT resets only an inherited Cmd).
    :raises InvalidArgument: Docker's errors for malformed arguments.
    """
    new = json.loads(json.dumps(section))
    command, value = ins.command, ins.value
    if command == "ENV":
        current = env_map(new)
        for key, val in words.key_values(value, env, "ENV"):
            current[key] = val
        new["Env"] = [f"{k}={v}" for k, v in current.items()]
    elif command == "LABEL":
        new["Labels"] = {**(new.get("Labels") or {}), **dict(words.key_values(value, env, "LABEL"))}
    elif command == "MAINTAINER":
        pass  # the image's ``author``: the builder keeps it outside the section
    elif command == "WORKDIR":
        path = words.expand(value, env)
        if not path:
            raise InvalidArgument("WORKDIR requires exactly one argument")
        new["WorkingDir"] = posixpath.normpath(posixpath.join(new.get("WorkingDir") or "/", path))
    elif command == "USER":
        user = words.expand(value, env)
        if not user:
            raise InvalidArgument("USER requires exactly one argument")
        new["User"] = user
    elif command in ("CMD", "ENTRYPOINT"):
        key = "Cmd" if command == "CMD" else "Entrypoint"
        new[key] = command_line(new, value) if value.strip() else None
        if command == "ENTRYPOINT" and not cmd_set:
            new["Cmd"] = None
    elif command == "EXPOSE":
        ports = dict(new.get("ExposedPorts") or {})
        for port in words.split(value, env):
            ports[port if "/" in port else f"{port}/tcp"] = {}
        new["ExposedPorts"] = ports
    elif command == "VOLUME":
        paths = json_words(value) or words.split(value, env)
        if not paths or any(not p.strip() for p in paths):
            raise InvalidArgument("VOLUME specified can not be an empty string")
        new["Volumes"] = {**(new.get("Volumes") or {}), **{p: {} for p in paths}}
    else:
        new.update(_other(ins, env, new))
    return {k: v for k, v in new.items() if v is not None}


def _other(ins: Instruction, env: Mapping[str, str], section: Section) -> Section:
    """STOPSIGNAL, SHELL, HEALTHCHECK and ONBUILD: the keys they set."""
    command, value = ins.command, ins.value
    if command == "STOPSIGNAL":
        return {"StopSignal": words.expand(value, env)}
    if command == "SHELL":
        shell = json_words(value)
        if not shell:
            raise InvalidArgument("SHELL requires the arguments to be in JSON form")
        return {"Shell": shell}
    if command == "HEALTHCHECK":
        return {"Healthcheck": healthcheck(ins)}
    if command != "ONBUILD":
        raise AssertionError(command)
    trigger = value.strip()
    first = trigger.split(None, 1)[0].upper() if trigger else ""
    if first in ("ONBUILD", "FROM", "MAINTAINER", ""):
        raise DockerfileError(f"{first or 'ONBUILD'} isn't allowed as an ONBUILD trigger")
    return {"OnBuild": [*(section.get("OnBuild") or []), trigger]}


def healthcheck(ins: Instruction) -> dict[str, Any]:
    """``HEALTHCHECK NONE`` or ``HEALTHCHECK [--interval=...] CMD ...`` as Docker's config."""
    value = ins.value.strip()
    kind, _, rest = value.partition(" ")
    if kind.upper() == "NONE":
        if rest.strip() or ins.flags:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if kind.upper() != "CMD" or not rest.strip():
        raise InvalidArgument("Unknown type in HEALTHCHECK (try CMD)")
    exec_form = json_words(rest)
    check: dict[str, Any] = {
        "Test": ["CMD", *exec_form] if exec_form is not None else ["CMD-SHELL", rest.strip()]
    }
    for flag, raw in ins.flags.items():
        if flag in _DURATION_FLAGS:
            try:
                check[_DURATION_FLAGS[flag]] = parse_go_duration(raw)
            except ValueError:
                raise InvalidArgument(f"--{flag}: invalid duration {raw!r}") from None
        elif flag == "retries":
            if not raw.isdigit():
                raise InvalidArgument(f"--retries must be a number, not {raw!r}")
            check["Retries"] = int(raw)
        else:
            raise InvalidArgument(f"Unknown flag: {flag}")
    return check


def declared_args(pairs: Sequence[tuple[str, str]]) -> str:
    """Docker's ``|N A=1 B=2 `` prefix of a RUN's ``created_by`` (its build args)."""
    if not pairs:
        return ""
    return f"|{len(pairs)} " + " ".join(f"{k}={v}" for k, v in pairs) + " "
