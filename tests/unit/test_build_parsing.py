"""Dockerfile parsing, word expansion, .dockerignore matching and the build's config steps."""

import pytest

from podapi.engine.imagebuild import config, words
from podapi.engine.imagebuild.dockerfile import (
    DockerfileError,
    Instruction,
    parse,
    parse_instruction,
)
from podapi.engine.imagebuild.ignore import Ignore
from podapi.errors import InvalidArgument

SOURCE = """\
# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM $BASE AS build
RUN echo a \\
  # a comment inside the continuation
  b
RUN <<EOF
echo from heredoc
EOF
COPY --chmod=755 --chown=1:2 <<-EOT /x
\thello
\tEOT
ENV A=1
FROM build
CMD ["echo", "x"]
"""


def test_stages_flags_continuations_and_heredocs() -> None:
    """Meta ARGs, two stages, a continued RUN without its comment, heredoc bodies kept apart."""
    parsed = parse(SOURCE)
    assert [i.text for i in parsed.meta_args] == ["ARG BASE=busybox"]
    first, second = parsed.stages
    assert (first.base, first.name, second.base, second.name) == ("$BASE", "build", "build", "")
    run, heredoc_run, copy, env = first.instructions
    assert run.value == "echo a   b"
    assert heredoc_run.heredocs[0].content == "echo from heredoc\n"
    assert copy.flags == {"chmod": "755", "chown": "1:2"}
    assert copy.value == "<<-EOT /x"
    assert copy.heredocs[0].content == "hello\n"
    assert env.line == 13
    assert parsed.steps == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM a\nFOO bar\n", "line 2: unknown instruction: FOO"),
        ("RUN x\n", "RUN before FROM"),
        ("# only a comment\n", "must begin with a 'FROM'"),
        ("FROM a\nRUN <<EOF\nnever closed\n", "unterminated heredoc"),
        ("FROM a b\n", "FROM requires either one or three arguments"),
    ],
)
def test_syntax_errors_are_docker_parse_errors(text: str, message: str) -> None:
    """Malformed Dockerfiles fail before any step with Docker's wording."""
    with pytest.raises(DockerfileError, match=message):
        parse(text)


def test_onbuild_trigger_cannot_be_from() -> None:
    """ONBUILD FROM is refused as Docker refuses it."""
    with pytest.raises(DockerfileError):
        parse_instruction("FROM busybox")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$A", "1"),
        ("${A}b", "1b"),
        ("'$A'", "$A"),
        ('"$A $MISSING"', "1 "),
        ("${MISSING:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${A:+alt}", "alt"),
        ("${MISSING+alt}", ""),
        (r"\$A", "$A"),
        ("a\\ b", "a b"),
    ],
)
def test_words_expand_as_docker(text: str, expected: str) -> None:
    """moby's shell lexer rules for ``$VAR``, ``${VAR:-...}``, quotes and escapes."""
    assert words.expand(text, {"A": "1", "EMPTY": ""}) == expected


def test_words_errors_and_pairs() -> None:
    """``${X:?}``, unbalanced quotes; ENV's KEY=VALUE and old KEY VALUE forms."""
    with pytest.raises(InvalidArgument, match="must be set"):
        words.expand("${X:?must be set}", {})
    with pytest.raises(InvalidArgument, match="matching"):
        words.expand('"open', {})
    assert words.key_values('A=1 B="two words" C=$A', {"A": "x"}, "ENV") == [
        ("A", "1"),
        ("B", "two words"),
        ("C", "x"),
    ]
    assert words.key_values("KEY some value", {}, "ENV") == [("KEY", "some value")]


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("a.log", True),
        ("sub/a.log", False),
        ("build", True),
        ("build/x/y", True),
        ("build/keep", False),
        ("deep/down/tmp", True),
        ("tmp/inside", True),
        ("docs/a.md", True),
        ("docs/README.md", False),
        ("src/main.py", False),
        ("x[1].txt", True),
    ],
)
def test_dockerignore_follows_go_patterns_with_exceptions(path: str, ignored: bool) -> None:
    """``*`` stays in a directory, ``**`` crosses them, ``!`` re-includes, parents match."""
    rules = Ignore.parse(
        "# comment\n*.log\n/build\n!build/keep\n**/tmp\ndocs/*.md\n!docs/README.md\nx\\[1\\].txt\n"
    )
    assert rules.ignored(path) is ignored


def test_metadata_instructions_make_docker_config() -> None:
    """ENV, LABEL, WORKDIR (relative), USER, EXPOSE, VOLUME, SHELL, ENTRYPOINT, HEALTHCHECK."""
    section: dict[str, object] = {"Env": ["PATH=/bin"], "Cmd": ["sh"]}
    for text in (
        "ENV NAME=world",
        'LABEL greeting="hello $NAME"',
        "WORKDIR /app",
        "WORKDIR sub",
        "USER 1000:1000",
        "EXPOSE 80 53/udp",
        'VOLUME ["/data"]',
        'SHELL ["/bin/ash", "-c"]',
        "ENTRYPOINT run $NAME",
        "HEALTHCHECK --interval=5s --retries=2 CMD check",
        "STOPSIGNAL SIGINT",
        "ONBUILD RUN echo later",
    ):
        ins = parse_instruction(text) if not text.startswith("ONBUILD") else _onbuild(text)
        section = config.apply(section, ins, config.env_map(section), False)
    assert section["Env"] == ["PATH=/bin", "NAME=world"]
    assert section["Labels"] == {"greeting": "hello world"}
    assert section["WorkingDir"] == "/app/sub"
    assert section["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert section["Volumes"] == {"/data": {}}
    # ENTRYPOINT in the shell form runs under SHELL and drops the inherited CMD.
    assert section["Entrypoint"] == ["/bin/ash", "-c", "run $NAME"]
    assert "Cmd" not in section
    assert section["Healthcheck"] == {
        "Test": ["CMD-SHELL", "check"],
        "Interval": 5_000_000_000,
        "Retries": 2,
    }
    assert section["OnBuild"] == ["RUN echo later"]
    assert section["StopSignal"] == "SIGINT"


def _onbuild(text: str) -> Instruction:
    [stage] = parse(f"FROM x\n{text}\n").stages
    return stage.instructions[0]


def test_run_created_by_names_build_args() -> None:
    """A RUN's history (its cache key) names the build args in scope, as Docker's ``|N``."""
    assert config.declared_args([("A", "1"), ("B", "2")]) == "|2 A=1 B=2 "
    assert config.declared_args([]) == ""
    assert config.command_line({}, "echo hi") == ["/bin/sh", "-c", "echo hi"]
    assert config.command_line({}, '["echo", "hi"]') == ["echo", "hi"]
