"""A fake :class:`podapi.oci.process.Runner` with argv expectations (Buildbot style)."""

from collections.abc import Mapping, Sequence

from attrs import define, field

from podapi.oci.process import ProcessFailed, ProcessResult


@define
class Expect:
    """One expected command: its argv and what it should return."""

    argv: tuple[str, ...]
    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""


@define
class FakeRunner:
    """Answers ``run`` from expectations matched by argv, in any order.

    Unexpected commands fail the test with ``AssertionError`` unless
    ``default`` is given, in which case they get that result.
    """

    expectations: list[Expect] = field(factory=list)
    default: Expect | None = None
    calls: list[tuple[str, ...]] = field(factory=list)

    def expect(
        self, *argv: str, exit_code: int = 0, stdout: bytes = b"", stderr: bytes = b""
    ) -> None:
        """Add an expectation."""
        self.expectations.append(Expect(tuple(argv), exit_code, stdout, stderr))

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
        result = ProcessResult(
            argv=key,
            exit_code=expectation.exit_code,
            signal=None,
            stdout=expectation.stdout,
            stderr=expectation.stderr,
        )
        if check and not result.ok:
            raise ProcessFailed(result)
        return result
