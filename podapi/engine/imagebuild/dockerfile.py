"""Dockerfiles parsed into stages of instructions.

The lines are read by ``dockerfile-parse`` (continuations, comments, the
instruction words).  What it lacks is done here: heredocs (``RUN <<EOF`` and
``COPY <<EOF /dest``, as BuildKit and buildah take them: the body lines are
taken out before the library reads the file, so it never mistakes them for
instructions), the leading ``--flag=value`` words, the split into stages at
each ``FROM`` with the ``ARG``\\ s before the first one kept apart, and
Docker's errors for unknown instructions and a file without ``FROM``.
"""

import io
import re
from collections.abc import Mapping

from attrs import field, frozen

from podapi.errors import InvalidArgument

#: Docker's instruction set (moby ``instructions.Parse``).
INSTRUCTIONS = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_FLAG = re.compile(r"--([a-z-]+)(?:=(\S*))?$")
_HEREDOC_USERS = ("RUN", "COPY", "ADD")


class DockerfileError(InvalidArgument):
    """The Dockerfile cannot be parsed (Docker's ``dockerfile parse error``)."""

    cause = "dockerfile parse error"


@frozen
class Heredoc:
    """A here-document: its name and body (tabs stripped for ``<<-``)."""

    name: str
    content: str


@frozen
class Instruction:
    """One instruction as written: ``command`` upper-cased, ``flags`` taken off ``value``.

    :ivar text: the instruction as Docker prints it in ``Step N/M : ...``.
    :ivar line: its first line, 1-based.
    """

    command: str
    value: str
    text: str
    line: int
    flags: Mapping[str, str] = field(factory=dict)
    heredocs: tuple[Heredoc, ...] = ()


@frozen
class Stage:
    """``FROM base [AS name]`` and the instructions up to the next ``FROM``."""

    index: int
    start: Instruction
    base: str
    name: str
    instructions: tuple[Instruction, ...]


@frozen
class Dockerfile:
    """The ``ARG``\\ s before the first ``FROM`` and the stages."""

    meta_args: tuple[Instruction, ...]
    stages: tuple[Stage, ...]

    @property
    def steps(self) -> int:
        """Docker's step count: every instruction of every stage, FROMs included."""
        return sum(1 + len(stage.instructions) for stage in self.stages)


def _take_heredocs(text: str) -> tuple[str, dict[int, tuple[Heredoc, ...]]]:
    """The text with here-document bodies blanked, and the bodies by 0-based line
    of the instruction line that names them."""
    lines = text.split("\n")
    found: dict[int, tuple[Heredoc, ...]] = {}
    index = 0
    while index < len(lines):
        line, marker_line = lines[index], index
        word = line.strip().split(None, 1)[0].upper() if line.strip() else ""
        markers = _HEREDOC.findall(line) if word in _HEREDOC_USERS else []
        index += 1
        docs = []
        for strip_tabs, _, name in markers:
            body: list[str] = []
            while index < len(lines):
                candidate = lines[index].lstrip("\t") if strip_tabs else lines[index]
                lines[index] = ""
                index += 1
                if candidate == name:
                    break
                body.append(candidate)
            else:
                raise DockerfileError(f"unterminated heredoc {name!r}")
            docs.append(Heredoc(name, "".join(b + "\n" for b in body)))
        if docs:
            found[marker_line] = tuple(docs)
    return "\n".join(lines), found


def _flags(command: str, value: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = value
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        match = _FLAG.match(word)
        if match is None:
            raise DockerfileError(f"{command}: invalid flag {word!r}")
        flags[match.group(1)] = match.group(2) or ""
        rest = after.lstrip()
    return flags, rest


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile.

    :raises DockerfileError: an unknown instruction, an unterminated heredoc, a bad
        flag, no ``FROM``, or an instruction other than ``ARG`` before it.
    """
    blanked, heredocs = _take_heredocs(text)
    # On first use: a server start has no Dockerfile to parse.
    from dockerfile_parse import DockerfileParser  # noqa: PLC0415

    parser = DockerfileParser(fileobj=io.BytesIO(blanked.encode()))
    meta: list[Instruction] = []
    stages: list[tuple[Instruction, list[Instruction]]] = []
    for item in parser.structure:
        command = item["instruction"].upper()
        if command == "COMMENT":
            continue
        line = item["startline"] + 1
        if command not in INSTRUCTIONS:
            raise DockerfileError(
                f"dockerfile parse error line {line}: unknown instruction: {command}"
            )
        value = item["value"].strip()
        flags, rest = _flags(command, value)
        docs: tuple[Heredoc, ...] = ()
        for doc_line, found in heredocs.items():
            if item["startline"] <= doc_line <= item["endline"]:
                docs = found
        instruction = Instruction(command, rest, f"{command} {value}".rstrip(), line, flags, docs)
        if command == "FROM":
            stages.append((instruction, []))
        elif not stages:
            if command != "ARG":
                raise DockerfileError(
                    f"dockerfile parse error line {line}: {command} before FROM "
                    "(only ARG may come before the first FROM)"
                )
            meta.append(instruction)
        else:
            stages[-1][1].append(instruction)
    if not stages:
        raise DockerfileError("the Dockerfile (Containerfile) must begin with a 'FROM' instruction")
    return Dockerfile(
        tuple(meta),
        tuple(_stage(index, start, body) for index, (start, body) in enumerate(stages)),
    )


def _stage(index: int, start: Instruction, body: list[Instruction]) -> Stage:
    words = start.value.split()
    if len(words) == 3 and words[1].lower() == "as":
        base, name = words[0], words[2].lower()
    elif len(words) == 1:
        base, name = words[0], ""
    else:
        raise DockerfileError(
            f"dockerfile parse error line {start.line}: FROM requires either one or three arguments"
        )
    return Stage(index, start, base, name, tuple(body))


def parse_instruction(text: str, line: int = 0) -> Instruction:
    """One instruction on its own (an ONBUILD trigger)."""
    command, _, value = text.strip().partition(" ")
    command = command.upper()
    if command not in INSTRUCTIONS or command in ("ONBUILD", "FROM", "MAINTAINER"):
        raise DockerfileError(f"{command} isn't allowed as an ONBUILD trigger")
    flags, rest = _flags(command, value.strip())
    return Instruction(command, rest, f"{command} {value.strip()}".rstrip(), line, flags)
