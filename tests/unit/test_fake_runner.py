"""The fake process runner answers as the real one does, for the same commands."""

import pytest
import pytest_twisted
from twisted.internet import reactor

from podapi.oci.process import ProcessFailed, ProcessResult, ProcessRunner, Runner
from podapi.testing.process import FakeRunner

SHELL = ("sh", "-c", "echo out; echo err >&2; exit 3")
MISSING = ("podapi-no-such-binary",)
SLOW = ("sleep", "5")


def configured() -> FakeRunner:
    """A fake told what the real runner does with these commands."""
    fake = FakeRunner()
    fake.expect("true")
    fake.expect(*SHELL, exit_code=3, stdout=b"out\n", stderr=b"err\n")
    fake.expect(
        *MISSING, error=FileNotFoundError(f"executable file {MISSING[0]!r} not found in $PATH")
    )
    fake.expect(*SLOW, exit_code=None, signal=15, timed_out=True)
    return fake


async def outcome(runner: Runner, argv: tuple[str, ...], **kwargs: object) -> object:
    """A result, or the type and message of what was raised."""
    try:
        return await runner.run(argv, **kwargs)  # type: ignore[arg-type]
    except ProcessFailed as e:
        return (ProcessFailed, e.result)
    except Exception as e:
        return (type(e), str(e))


CASES: list[tuple[tuple[str, ...], dict[str, object]]] = [
    (("true",), {}),
    (SHELL, {}),
    (SHELL, {"check": True}),
    (MISSING, {}),
    (SLOW, {"timeout": 0.3}),
    (SLOW, {"timeout": 0.3, "check": True}),
]


@pytest.mark.parametrize(("argv", "kwargs"), CASES)
@pytest_twisted.ensureDeferred
async def test_fake_and_real_runner_agree(argv: tuple[str, ...], kwargs: dict[str, object]) -> None:
    """The same command gives equal results, or the same exception, real or fake."""
    real = await outcome(ProcessRunner(reactor), argv, **kwargs)
    fake = await outcome(configured(), argv, **kwargs)
    assert fake == real


@pytest_twisted.ensureDeferred
async def test_results_are_what_the_runner_promises() -> None:
    """Sanity of the shared expectations: a timeout is TERM, a failure is not ok."""
    result = await configured().run(SLOW, timeout=1)
    assert isinstance(result, ProcessResult)
    assert result.timed_out and result.signal == 15 and result.exit_code is None
    assert not result.ok


@pytest_twisted.ensureDeferred
async def test_an_unexpected_command_fails_the_test() -> None:
    with pytest.raises(AssertionError, match="unexpected command"):
        await configured().run(["rm", "-rf", "/"])


@pytest_twisted.ensureDeferred
async def test_check_reports_expectations_never_run() -> None:
    fake = configured()
    await fake.run(["true"])
    with pytest.raises(AssertionError, match="never ran") as raised:
        fake.check()
    assert "'true'" not in str(raised.value)
    for argv in (SHELL, MISSING):
        await outcome(fake, argv)
    await fake.run(SLOW, timeout=1)
    fake.check()


@pytest_twisted.ensureDeferred
async def test_a_timeout_expected_without_a_timeout_is_a_test_error() -> None:
    """A fake timeout only happens when the caller set one (the real process would run on)."""
    with pytest.raises(AssertionError, match="without a timeout"):
        await configured().run(SLOW)
