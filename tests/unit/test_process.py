"""The process runner, with real processes on the real reactor."""

import os
import signal
import sys

import pytest
import pytest_twisted
from twisted.internet import reactor

from podapi.oci.process import ProcessFailed, ProcessRunner


@pytest_twisted.ensureDeferred
async def test_collects_output_and_status() -> None:
    runner = ProcessRunner(reactor)
    result = await runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result.exit_code == 3
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"
    assert not result.ok


@pytest_twisted.ensureDeferred
async def test_stdin_and_explicit_environment() -> None:
    runner = ProcessRunner(reactor)
    result = await runner.run(
        ["sh", "-c", 'cat; echo "$FOO"; echo "${HOME:-unset}"'],
        stdin=b"typed\n",
        env={"PATH": "/usr/bin:/bin", "FOO": "bar"},
    )
    assert result.stdout == b"typed\nbar\nunset\n"


@pytest_twisted.ensureDeferred
async def test_timeout_escalates_to_kill() -> None:
    """A child that ignores TERM is killed after the grace period."""
    runner = ProcessRunner(reactor, kill_grace=0.2)
    ignore_term = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(30)"
    )
    result = await runner.run([sys.executable, "-c", ignore_term], timeout=0.2)
    assert result.timed_out
    assert result.signal == 9
    assert not result.ok


@pytest_twisted.ensureDeferred
async def test_daemonised_grandchild_does_not_hold_the_result() -> None:
    """A grandchild keeping stdout open (aardvark-dns does) does not block completion."""
    runner = ProcessRunner(reactor, pipe_grace=0.2)
    result = await runner.run(["sh", "-c", "sleep 30 & echo $!"], timeout=10)
    os.kill(int(result.stdout), signal.SIGKILL)  # the grandchild we started
    assert result.exit_code == 0
    assert not result.timed_out


@pytest_twisted.ensureDeferred
async def test_check_raises_with_stderr() -> None:
    runner = ProcessRunner(reactor)
    with pytest.raises(ProcessFailed, match="exit status 2: nope"):
        await runner.run(["sh", "-c", "echo nope >&2; exit 2"], check=True)


@pytest_twisted.ensureDeferred
async def test_missing_executable() -> None:
    runner = ProcessRunner(reactor)
    with pytest.raises(FileNotFoundError):
        await runner.run(["definitely-not-a-command-xyz"])
