"""``twistd podapi`` options, parsed directly."""

import pytest
from twisted.python.usage import UsageError

from podapi.tap import Options


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_defaults() -> None:
    config = parse("unix:///tmp/x.sock").config()
    assert config.timeout == 5.0
    assert config.root == "/var/lib/podapi"
    assert config.runroot == "/run/podapi"
    assert config.cors is None
    assert config.log_level == "warn"
    assert config.listen.socket_path == "/tmp/x.sock"


def test_options_may_follow_the_uri() -> None:
    """`podapi --root T unix:///x -t 2` as Podman (cobra) accepts it."""
    config = parse("--root", "/r", "unix:///tmp/x.sock", "-t", "2", "--cors", "*").config()
    assert config.timeout == 2.0
    assert config.root == "/r"
    assert config.cors == "*"


@pytest.mark.parametrize("flag", ["--time=7", "--timeout=7", "-t7"])
def test_time_is_an_alias_of_timeout(flag: str) -> None:
    assert parse(flag, "unix:///tmp/x.sock").config().timeout == 7.0


def test_default_socket_when_no_uri() -> None:
    assert parse().config().listen.uri.startswith("unix://")


@pytest.mark.parametrize(
    "argv",
    [
        ["-t", "-1", "unix:///x.sock"],
        ["--time=abc", "unix:///x.sock"],
        ["--log-level", "loud", "unix:///x.sock"],
        ["--root", "relative", "unix:///x.sock"],
        ["unix:rel.sock"],
        ["bogus://x"],
        ["unix:///a.sock", "unix:///b.sock"],
        ["--no-such-option"],
    ],
)
def test_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse(*argv)
