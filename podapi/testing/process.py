"""A fake :class:`podapi.oci.process.Runner` with argv expectations (Buildbot style)."""

from collections.abc import Mapping, Sequence

from attrs import define, field

from podapi.oci.process import ProcessFailed, ProcessResult


@define
class Expect:
    """One expected command: its argv and how it ends.

    :ivar signal: the signal that ended it (then ``exit_code`` is None, as the
        real runner reports a death by signal).
    :ivar timed_out: it ran past the caller's timeout (the real runner then TERMs it).
    :ivar error: raised instead of a result (``FileNotFoundError`` for a missing binary).
    """

    argv: tuple[str, ...]
    exit_code: int | None = 0
    stdout: bytes = b""
    stderr: bytes = b""
    signal: int | None = None
    timed_out: bool = False
    error: Exception | None = None
    used: int = 0


@define
class FakeRunner:
    """Answers ``run`` from expectations matched by argv, in any order.

    Unexpected commands fail the test with ``AssertionError`` unless
    ``default`` is given, in which case they get that result.  :meth:`check`
    fails the test when an expectation was never run.
    """

    expectations: list[Expect] = field(factory=list)
    default: Expect | None = None
    calls: list[tuple[str, ...]] = field(factory=list)

    def expect(
        self,
        *argv: str,
        exit_code: int | None = 0,
        stdout: bytes = b"",
        stderr: bytes = b"",
        signal: int | None = None,
        timed_out: bool = False,
        error: Exception | None = None,
    ) -> None:
        """Add an expectation (it answers every run of that argv)."""
        self.expectations.append(
            Expect(tuple(argv), exit_code, stdout, stderr, signal, timed_out, error)
        )

    def check(self) -> None:
        """Raise ``AssertionError`` if an expected command never ran."""
        unmet = [e.argv for e in self.expectations if not e.used]
        if unmet:
            raise AssertionError(f"expected commands that never ran: {unmet}")

    async def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> ProcessResult:
        """Match ``argv`` against the expectations."""
        key = tuple(argv)
        self.calls.append(key)
        for expectation in self.expectations:
            if expectation.argv == key:
                break
        else:
            if self.default is None:
                raise AssertionError(f"unexpected command: {key}")
            expectation = self.default
        expectation.used += 1
        if expectation.error is not None:
            raise expectation.error
        if expectation.timed_out and timeout is None:
            raise AssertionError(f"{key} is expected to time out, but was run without a timeout")
        result = ProcessResult(
            argv=key,
            exit_code=expectation.exit_code,
            signal=expectation.signal,
            stdout=expectation.stdout,
            stderr=expectation.stderr,
            timed_out=expectation.timed_out,
        )
        if check and not result.ok:
            raise ProcessFailed(result)
        return result
