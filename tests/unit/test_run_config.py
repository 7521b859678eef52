"""How a request and an image config combine into what runs (Docker's rules)."""

import pytest

from podapi.engine.containers import run_config
from podapi.engine.containerspec import ContainerSpec, merge_env, process_env
from podapi.errors import InvalidArgument

IMAGE = {
    "config": {
        "Entrypoint": ["/entry"],
        "Cmd": ["serve", "--port", "80"],
        "Env": ["PATH=/opt/bin", "MODE=prod"],
        "WorkingDir": "/srv",
        "User": "daemon",
        "StopSignal": "SIGQUIT",
        "Labels": {"from": "image", "both": "image"},
    }
}


def test_image_defaults_apply() -> None:
    run = run_config(ContainerSpec(image="x"), IMAGE, "c" * 64, "host1")
    assert (run.path, run.args) == ("/entry", ("serve", "--port", "80"))
    assert run.env == ("HOSTNAME=host1", "container=podman", "PATH=/opt/bin", "MODE=prod")
    assert (run.working_dir, run.user, run.stop_signal) == ("/srv", "daemon", "SIGQUIT")
    assert run.stop_timeout == 10


def test_request_overrides_image() -> None:
    spec = ContainerSpec(
        image="x",
        command=("other",),
        env=("MODE=dev", "NEW=1"),
        working_dir="/tmp",
        user="0:0",
        labels={"both": "request"},
        stop_timeout=3,
    )
    run = run_config(spec, IMAGE, "c" * 64, "h")
    assert (run.path, run.args) == ("/entry", ("other",))
    assert "MODE=dev" in run.env and "MODE=prod" not in run.env and "NEW=1" in run.env
    assert (run.working_dir, run.user, run.stop_timeout) == ("/tmp", "0:0", 3)
    assert run.labels == {"from": "image", "both": "request"}


def test_a_new_entrypoint_drops_the_image_command() -> None:
    run = run_config(ContainerSpec(image="x", entrypoint=("/bin/sh",)), IMAGE, "c" * 64, "h")
    assert (run.path, run.args) == ("/bin/sh", ())
    both = ContainerSpec(image="x", entrypoint=("/bin/sh",), command=("-c", "true"))
    assert run_config(both, IMAGE, "c" * 64, "h").args == ("-c", "true")


def test_defaults_without_image_config() -> None:
    run = run_config(ContainerSpec(image="x", command=("true",), tty=True), {}, "c" * 64, "h")
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in run.env
    assert "TERM=xterm" in run.env
    assert (run.working_dir, run.user, run.stop_signal) == ("/", "", "SIGTERM")


def test_no_command_at_all_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="no command"):
        run_config(ContainerSpec(image="x"), {}, "c" * 64, "h")


def test_unknown_stop_signal_is_an_error() -> None:
    with pytest.raises(InvalidArgument):
        run_config(
            ContainerSpec(image="x", command=("a",), stop_signal="SIGNOPE"), {}, "c" * 64, "h"
        )


def test_a_bare_env_name_stays_in_config_env_but_not_in_the_process_env() -> None:
    """Docker keeps ``Foo`` in ``Config.Env`` (replacing the image's ``Foo=``); the
    process gets no variable of that name."""
    spec = ContainerSpec(image="x", env=("MODE", "Blank=", "NEW=1"))
    run = run_config(spec, IMAGE, "c" * 64, "host1")
    assert "MODE" in run.env and "MODE=prod" not in run.env
    assert process_env(run.env)[-2:] == ["Blank=", "NEW=1"]
    assert not any(e.startswith("MODE") for e in process_env(run.env))
    # exec's rule is unchanged: a bare name removes the variable
    assert merge_env(["A=1", "B=2"], ["A"]) == ("B=2",)
