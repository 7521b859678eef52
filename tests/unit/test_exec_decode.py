"""Exec session requests and replies: Docker's ExecConfig in, Podman's inspect out."""

import pytest

from podapi.engine.execs import CANNOT_INVOKE, GENERIC, NOT_FOUND, failure_exit_code
from podapi.engine.state.execs import EXITED, ExecRecord
from podapi.errors import InvalidArgument
from podapi.http.both.execs import decode_exec, encode_exec


def test_fields_match_case_insensitively_as_in_go() -> None:
    spec = decode_exec(
        {
            "cmd": ["sh", "-c", "true"],
            "Env": ["A=b"],
            "user": "nobody",
            "WorkingDir": "/tmp",
            "TTY": True,
            "AttachStdout": True,
            "detachKeys": "ctrl-x",
        }
    )
    assert spec.command == ("sh", "-c", "true")
    assert (spec.env, spec.user, spec.working_dir) == (("A=b",), "nobody", "/tmp")
    assert (spec.tty, spec.attach_stdout, spec.attach_stdin) == (True, True, False)
    assert spec.detach_keys == "ctrl-x"


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"Cmd": []},
        {"Cmd": "true"},
        {"Cmd": ["true"], "Env": ["NOEQUALS"]},
        {"Cmd": ["true"], "Tty": "yes"},
        {"Cmd": ["true"], "DetachKeys": "ctrl-1"},
    ],
)
def test_bad_requests(body: object) -> None:
    with pytest.raises(InvalidArgument):
        decode_exec(body)


def test_inspect_shape() -> None:
    spec = decode_exec({"Cmd": ["sh", "-c", "exit 3"], "AttachStderr": True})
    record = ExecRecord(
        id="e" * 64, container_id="c" * 64, spec=spec, created=1, state=EXITED, exit_code=3
    )
    body = encode_exec(record)
    assert body["ExitCode"] == 3 and body["Running"] is False and body["CanRemove"] is True
    assert body["ProcessConfig"] == {
        "arguments": ["-c", "exit 3"],
        "entrypoint": "sh",
        "privileged": False,
        "tty": False,
        "user": "",
    }
    assert body["DetachKeys"] == "ctrl-p,ctrl-q"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ('exec: "nope": executable file not found in $PATH', NOT_FOUND),
        ("exec: /x: no such file or directory", NOT_FOUND),
        ("exec: /etc/passwd: permission denied", CANNOT_INVOKE),
        ("something else broke", GENERIC),
    ],
)
def test_runtime_refusals_map_to_docker_exit_codes(message: str, code: int) -> None:
    assert failure_exit_code(message) == code
