"""conmon's k8s-file logs: parsing, windows, tail from the end, following."""

import io
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue

from podapi.storage import k8slog
from podapi.storage.k8slog import LogFollower, LogLine, parse_time, read_lines
from podapi.threads import ThreadPoolService

P = ParamSpec("P")
T = TypeVar("T")

NS = 1_000_000_000
T0 = 1_800_000_000 * NS
TIMEOUT = 10.0


def stamp(time_ns: int, offset_minutes: int = 0) -> str:
    """A record time as conmon writes it: local time with a numeric offset."""
    zone = timezone(timedelta(minutes=offset_minutes))
    seconds, nanos = divmod(time_ns, NS)
    moment = datetime.fromtimestamp(seconds, zone)
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}{sign}{hours:02d}:{minutes:02d}"


def rec(stream: str, tag: str, text: str, time_ns: int = T0, offset_minutes: int = 0) -> bytes:
    """One record line."""
    return f"{stamp(time_ns, offset_minutes)} {stream} {tag} {text}\n".encode()


def write(path: Path, *records: bytes) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(records))


def data(lines: list[LogLine]) -> list[tuple[str, bytes]]:
    return [(line.stream, line.data) for line in lines]


# -- parsing -----------------------------------------------------------------


def test_partial_records_are_joined_with_the_next_full_record_of_their_stream(
    tmp_path: Path,
) -> None:
    """P records of a stream join its next F record; the other stream's lines come between."""
    log = tmp_path / "ctr.log"
    write(
        log,
        rec("stdout", "P", "Name: ", T0 + 1),
        rec("stderr", "F", "warning: slow", T0 + 2),
        rec("stdout", "P", "Ada", T0 + 3),
        rec("stderr", "P", "err ", T0 + 4),
        rec("stdout", "F", "", T0 + 5),
        rec("stderr", "F", "done", T0 + 6),
        rec("stdout", "F", "plain line", T0 + 7),
    )
    lines, _ = read_lines(log)
    assert data(lines) == [
        ("stderr", b"warning: slow\n"),
        ("stdout", b"Name: Ada\n"),
        ("stderr", b"err done\n"),
        ("stdout", b"plain line\n"),
    ]
    # A joined line carries the time of the record that finished it.
    assert [line.time_ns for line in lines] == [T0 + 2, T0 + 5, T0 + 6, T0 + 7]


def test_text_is_kept_byte_for_byte(tmp_path: Path) -> None:
    """Spaces, tabs, carriage returns and non-UTF-8 bytes in the text survive."""
    log = tmp_path / "ctr.log"
    text = b"  two  spaces\tand\r\xff\xfe "
    write(log, f"{stamp(T0)} stdout F ".encode() + text + b"\n")
    lines, _ = read_lines(log)
    assert data(lines) == [("stdout", text + b"\n")]


@pytest.mark.parametrize("offset_minutes", [0, 60, 330, -480, -150, 14 * 60])
def test_numeric_offsets_give_the_same_instant(tmp_path: Path, offset_minutes: int) -> None:
    """conmon writes the host's local offset; every offset names the same instant."""
    log = tmp_path / "ctr.log"
    write(log, rec("stdout", "F", "x", T0 + 123_456_789, offset_minutes))
    lines, _ = read_lines(log)
    assert [line.time_ns for line in lines] == [T0 + 123_456_789]


def test_parse_time_forms() -> None:
    assert parse_time(b"2026-11-27T07:18:06.811853188+00:00") == (
        int(datetime(2026, 11, 27, 7, 18, 6, tzinfo=UTC).timestamp()) * NS + 811853188
    )
    assert parse_time(b"2026-11-27T08:18:06.8+01:00") == parse_time(
        b"2026-11-27T07:18:06.800000000Z"
    )
    assert parse_time(b"2026-11-27T07:18:06-00:30") == parse_time(b"2026-11-27T07:48:06+00:00")
    for bad in [b"2026-11-27T25:00:00+00:00", b"2026-02-30T00:00:00+00:00", b"2026-11-27", b""]:
        assert parse_time(bad) is None


def test_empty_full_lines_are_newlines(tmp_path: Path) -> None:
    """``F`` with no text is an empty line, with or without the space after the tag."""
    log = tmp_path / "ctr.log"
    write(log, rec("stdout", "F", ""), f"{stamp(T0)} stderr F\n".encode())
    lines, _ = read_lines(log)
    assert data(lines) == [("stdout", b"\n"), ("stderr", b"\n")]


def test_malformed_and_torn_records_are_skipped(tmp_path: Path) -> None:
    """Garbage, unknown streams or tags, bad times and a torn header do not stop reading."""
    log = tmp_path / "ctr.log"
    torn = rec("stdout", "F", "lost")[:15]  # a crash mid-header; the next record follows
    write(
        log,
        rec("stdout", "F", "one"),
        b"not a record at all\n",
        b"\n",
        rec("stdin", "F", "bad stream"),
        rec("stdout", "X", "bad tag"),
        b"2026-13-45T99:00:00.000000000+00:00 stdout F bad time\n",
        torn + rec("stdout", "F", "swallowed by the torn line"),
        rec("stdout", "F:extra", "tags after a colon are ignored"),
        rec("stderr", "F", "two"),
    )
    lines, _ = read_lines(log)
    assert data(lines) == [
        ("stdout", b"one\n"),
        ("stdout", b"tags after a colon are ignored\n"),
        ("stderr", b"two\n"),
    ]


def test_missing_file_has_no_lines(tmp_path: Path) -> None:
    assert read_lines(tmp_path / "absent.log") == ([], 0)
    assert read_lines(tmp_path / "absent.log", tail=5) == ([], 0)


# -- windows, partial runs and the offset -------------------------------------


def test_since_and_until_are_inclusive(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    write(log, *(rec("stdout", "F", str(i), T0 + i * NS) for i in range(10)))
    lines, _ = read_lines(log, since_ns=T0 + 3 * NS, until_ns=T0 + 6 * NS)
    assert [line.data for line in lines] == [b"3\n", b"4\n", b"5\n", b"6\n"]
    lines, _ = read_lines(log, since_ns=T0 + 3 * NS, until_ns=T0 + 6 * NS, tail=2)
    assert [line.data for line in lines] == [b"5\n", b"6\n"]
    lines, _ = read_lines(log, since_ns=T0 + 8 * NS, tail=5)
    assert [line.data for line in lines] == [b"8\n", b"9\n"]


def test_unfinished_run_is_held_back_unless_asked_for(tmp_path: Path) -> None:
    """A P run with no F yet is held back; an exited container's is returned where it is."""
    log = tmp_path / "ctr.log"
    write(
        log,
        rec("stdout", "F", "before", T0 + 1),
        rec("stdout", "P", "prompt> ", T0 + 2),
        rec("stderr", "F", "after", T0 + 3),
    )
    lines, _ = read_lines(log)
    assert data(lines) == [("stdout", b"before\n"), ("stderr", b"after\n")]
    lines, offset = read_lines(log, include_partial=True)
    assert data(lines) == [
        ("stdout", b"before\n"),
        ("stdout", b"prompt> "),
        ("stderr", b"after\n"),
    ]
    assert lines[1].time_ns == T0 + 2
    assert offset == log.stat().st_size
    lines, _ = read_lines(log, include_partial=True, tail=2)
    assert data(lines) == [("stdout", b"prompt> "), ("stderr", b"after\n")]


def test_offset_is_after_the_last_record_that_completed_a_line(tmp_path: Path) -> None:
    """A follower starting there rebuilds held-back runs and repeats nothing."""
    log = tmp_path / "ctr.log"
    complete = rec("stdout", "F", "one") + rec("stderr", "F", "two")
    write(log, complete)
    assert read_lines(log)[1] == len(complete)
    assert read_lines(log, tail=1)[1] == len(complete)
    assert read_lines(log, tail=0) == ([], len(complete))

    held = rec("stdout", "P", "hel") + rec("stdout", "P", "lo")
    torn = rec("stderr", "F", "being written")[:20]
    write(log, held + torn)
    for tail in (None, 0, 1, 5):
        lines, offset = read_lines(log, tail=tail)
        assert offset == len(complete), tail
    lines, offset = read_lines(log, include_partial=True)
    # The unterminated piece at the end is still being written: never consumed.
    assert offset == len(complete) + len(held)
    assert data(lines)[-1] == ("stdout", b"hello")


def test_a_run_longer_than_max_line_is_returned_in_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A progress bar that never prints a newline cannot make us hold an unbounded line."""
    monkeypatch.setattr(k8slog, "MAX_LINE", 10)
    log = tmp_path / "ctr.log"
    write(log, *(rec("stdout", "P", "#####") for _ in range(5)), rec("stdout", "F", "done"))
    lines, _ = read_lines(log)
    assert [line.data for line in lines] == [b"#" * 10, b"#" * 10, b"#####done\n"]


def test_negative_tail_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tail"):
        read_lines(tmp_path / "ctr.log", tail=-1)


# -- tail from the end ---------------------------------------------------------


class CountingFileIO(io.FileIO):
    """A raw file that counts the bytes the kernel handed over."""

    read_bytes = 0

    def readinto(self, buffer: Any, /) -> int:
        count = super().readinto(buffer)
        CountingFileIO.read_bytes += count or 0
        return count

    def readall(self) -> bytes:
        chunk = super().readall()
        CountingFileIO.read_bytes += len(chunk)
        return chunk


def counting_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    assert mode == "rb"
    return io.BufferedReader(CountingFileIO(path, "r"))


def test_tail_reads_only_the_end_of_a_large_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last lines of a multi-megabyte log cost a few blocks, not the file."""
    log = tmp_path / "ctr.log"
    with open(log, "wb") as f:
        for i in range(60_000):
            f.write(rec("stdout" if i % 3 else "stderr", "F", f"line {i:06d} " + "x" * 60))
    size = log.stat().st_size
    assert size > 5_000_000

    monkeypatch.setattr(k8slog, "open", counting_open, raising=False)
    CountingFileIO.read_bytes = 0
    lines, offset = read_lines(log, tail=3)
    assert [line.data[:11] for line in lines] == [b"line 059997", b"line 059998", b"line 059999"]
    assert offset == size
    assert CountingFileIO.read_bytes <= 3 * k8slog.BLOCK_SIZE

    # A whole read goes through everything, which is what the tail avoided.
    CountingFileIO.read_bytes = 0
    lines, _ = read_lines(log)
    assert len(lines) == 60_000
    assert CountingFileIO.read_bytes == size


def test_tail_finds_the_start_of_a_run_that_crosses_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last line's P records begin blocks before its F: all of them are joined."""
    monkeypatch.setattr(k8slog, "BLOCK_SIZE", 64)
    log = tmp_path / "ctr.log"
    write(
        log,
        rec("stdout", "F", "older"),
        *(rec("stdout", "P", f"<{i}>") for i in range(20)),
        *(rec("stderr", "F", f"e{i}") for i in range(3)),
        rec("stdout", "F", "end"),
    )
    lines, _ = read_lines(log, tail=1)
    assert data(lines) == [("stdout", "".join(f"<{i}>" for i in range(20)).encode() + b"end\n")]


Record = tuple[str, str, str, int]
records_strategy = st.lists(
    st.tuples(
        st.sampled_from(["stdout", "stderr"]),
        st.sampled_from(["F", "F", "P"]),
        st.text(alphabet="ab \t", max_size=6),
        st.integers(min_value=0, max_value=2),  # time step: equal times happen
    ),
    max_size=40,
)


def render(records: list[Record]) -> bytes:
    out, now = [], T0
    for stream, tag, text, step in records:
        now += step * NS
        out.append(rec(stream, tag, text, now, offset_minutes=(step - 1) * 90))
    return b"".join(out)


def time_of(records: list[Record], index: int) -> int:
    """The time :func:`render` gives record ``index`` (one step past the last if beyond)."""
    steps = [step for *_, step in records[: index + 1]]
    return T0 + (sum(steps) + (index >= len(records))) * NS


def oracle(records: list[Record], include_partial: bool) -> list[tuple[str, bytes]]:
    """The lines a reader must produce, computed the simple way."""
    done: list[tuple[int, str, bytes]] = []
    runs: dict[str, tuple[int, bytes]] = {}
    for index, (stream, tag, text, _) in enumerate(records):
        pending = runs.pop(stream, (index, b""))[1] + text.encode()
        if tag == "P":
            runs[stream] = (index, pending)
        else:
            done.append((index, stream, pending + b"\n"))
    if include_partial:
        done.extend((index, stream, pending) for stream, (index, pending) in runs.items())
    return [(stream, line) for _, stream, line in sorted(done)]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for all examples of a hypothesis test (tmp_path is per test)."""
    return tmp_path_factory.mktemp("k8slog")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=records_strategy,
    include_partial=st.booleans(),
    tail=st.integers(min_value=0, max_value=12),
    since=st.none() | st.integers(min_value=0, max_value=40),
    until=st.none() | st.integers(min_value=0, max_value=40),
    garbage=st.booleans(),
    block=st.sampled_from([16, 61, 200, 64 * 1024]),
)
def test_tail_equals_the_end_of_a_whole_read(
    scratch: Path,
    records: list[Record],
    include_partial: bool,
    tail: int,
    since: int | None,
    until: int | None,
    garbage: bool,
    block: int,
) -> None:
    """Whatever the interleaving and block size, tail(n) is the last n lines of a full read."""
    content = render(records)
    if garbage:
        content = b"junk\n" + content + b"2026-11-27T07:18:06"  # torn head and tail
    path = str(scratch / "ctr.log")
    with open(path, "wb") as f:
        f.write(content)
    # Window edges are the times of records (since/until pick one by index), so
    # the edges often fall exactly on lines, and on runs of equal times.
    window = {
        "since_ns": None if since is None else time_of(records, since),
        "until_ns": None if until is None else time_of(records, until),
    }
    old_block = k8slog.BLOCK_SIZE
    k8slog.BLOCK_SIZE = block
    try:
        whole, whole_offset = read_lines(path, include_partial=include_partial, **window)
        tailed, tail_offset = read_lines(path, include_partial=include_partial, tail=tail, **window)
        unwindowed, _ = read_lines(path, include_partial=include_partial)
    finally:
        k8slog.BLOCK_SIZE = old_block
    assert data(unwindowed) == oracle(records, include_partial)
    assert tailed == (whole[len(whole) - tail :] if tail else [])
    assert tail_offset == whole_offset


# -- following -----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(
        st.tuples(
            st.just("stdout"),
            st.sampled_from(["F", "P"]),
            st.text(alphabet="ab ", max_size=5),
            st.just(1),
        ),
        max_size=25,
    ),
    cut=st.integers(min_value=0),
    pieces=st.lists(st.integers(min_value=1, max_value=40), max_size=30),
)
def test_read_then_follow_in_pieces_gives_every_line_once(
    scratch: Path, records: list[Record], cut: int, pieces: list[int]
) -> None:
    """read_lines on a prefix, then the follower on the rest, however the bytes arrive."""
    content = render(records)
    cut = cut % (len(content) + 1)
    path = str(scratch / "follow.log")
    with open(path, "wb") as f:
        f.write(content[:cut])
    first, offset = read_lines(path)
    state = k8slog._FollowState(path, offset)
    followed: list[LogLine] = []
    rest = content[cut:]
    for size in [*pieces, len(rest)]:
        piece, rest = rest[:size], rest[size:]
        with open(path, "ab") as f:
            f.write(piece)
        followed.extend(state.read()[0])
    followed.extend(state.read(final=True)[0])
    state.close()
    assert data(first + followed) == oracle(records, include_partial=True)


@pytest.fixture
def pool() -> Iterator[ThreadPoolService]:
    service = ThreadPoolService(reactor, "k8slog-test", maxthreads=1)  # type: ignore[arg-type]
    service.startService()
    yield service
    service.stopService()


class ProbedBlocking:
    """A Blocking that reports each finished call, after its result was used."""

    def __init__(self, inner: ThreadPoolService) -> None:
        self._inner = inner
        self.finished: DeferredQueue[str] = DeferredQueue()

    def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        def report(result: T) -> T:
            # Later in the reactor's turn, so the follower has delivered the lines first.
            reactor.callLater(0, self.finished.put, fn.__name__)
            return result

        return self._inner(fn, *args, **kwargs).addBoth(report)


class Collector:
    def __init__(self) -> None:
        self.lines: list[LogLine] = []
        self._queue: DeferredQueue[LogLine] = DeferredQueue()

    def __call__(self, line: LogLine) -> None:
        self.lines.append(line)
        self._queue.put(line)

    async def next(self) -> LogLine:
        return await self._queue.get().addTimeout(TIMEOUT, reactor)

    async def take(self, count: int) -> list[tuple[str, bytes]]:
        return data([await self.next() for _ in range(count)])


async def next_read(io: ProbedBlocking) -> str:
    return await io.finished.get().addTimeout(TIMEOUT, reactor)


@pytest_twisted.ensureDeferred
async def test_follower_delivers_appended_lines_in_order(
    tmp_path: Path, pool: ThreadPoolService
) -> None:
    log = tmp_path / "ctr.log"
    write(log, rec("stdout", "F", "already read"))
    assert data(read_lines(log)[0]) == [("stdout", b"already read\n")]
    offset = read_lines(log)[1]
    write(log, rec("stdout", "F", "written before start"))
    got = Collector()
    follower = LogFollower(reactor, str(log), offset, pool, got)
    follower.start()
    try:
        assert await got.take(1) == [("stdout", b"written before start\n")]
        for i in range(200):
            write(log, rec("stderr" if i % 2 else "stdout", "F", f"n{i}"))
        assert await got.take(200) == [
            ("stderr" if i % 2 else "stdout", f"n{i}\n".encode()) for i in range(200)
        ]
    finally:
        await follower.stop()


@pytest_twisted.ensureDeferred
async def test_follower_holds_a_partial_line_until_its_newline(
    tmp_path: Path, pool: ThreadPoolService
) -> None:
    """Half a record, and a P run, wait for the rest; nothing half-made is delivered."""
    log = tmp_path / "ctr.log"
    log.touch()
    io = ProbedBlocking(pool)
    got = Collector()
    follower = LogFollower(reactor, str(log), 0, io, got)
    follower.start()
    try:
        assert await next_read(io) == "read"  # the initial read found nothing

        record = rec("stdout", "F", "hello")
        write(log, record[:30])
        assert await next_read(io) == "read"
        assert got.lines == []
        write(log, record[30:])
        assert await got.take(1) == [("stdout", b"hello\n")]

        write(log, rec("stdout", "P", "Name: "), rec("stderr", "F", "unrelated"))
        assert await got.take(1) == [("stderr", b"unrelated\n")]
        write(log, rec("stdout", "F", "Ada"))
        assert await got.take(1) == [("stdout", b"Name: Ada\n")]
    finally:
        await follower.stop()


@pytest_twisted.ensureDeferred
async def test_follower_continues_in_the_file_that_replaced_the_log(
    tmp_path: Path, pool: ThreadPoolService
) -> None:
    """conmon's --log-size-max: PATH.tmp renamed over PATH; the new file is read from 0."""
    log = tmp_path / "ctr.log"
    write(log, rec("stdout", "F", "old 1"))
    got = Collector()
    follower = LogFollower(reactor, str(log), 0, pool, got)
    follower.start()
    try:
        assert await got.take(1) == [("stdout", b"old 1\n")]
        # conmon finishes the old file, then creates, renames and writes the new one;
        # a P run goes on across the switch.
        write(log, rec("stdout", "F", "old 2"), rec("stdout", "P", "spans "))
        tmp = tmp_path / "ctr.log.tmp"
        tmp.touch()
        os.rename(tmp, log)
        write(log, rec("stdout", "F", "files"), rec("stderr", "F", "new 1"))
        assert await got.take(3) == [
            ("stdout", b"old 2\n"),
            ("stdout", b"spans files\n"),
            ("stderr", b"new 1\n"),
        ]
        # And again, with the new file smaller than the offset reached in the old one.
        write(tmp, rec("stdout", "F", "n"))
        os.rename(tmp, log)
        assert await got.take(1) == [("stdout", b"n\n")]
    finally:
        await follower.stop()


@pytest_twisted.ensureDeferred
async def test_follower_waits_for_a_log_that_does_not_exist_yet(
    tmp_path: Path, pool: ThreadPoolService
) -> None:
    log = tmp_path / "ctr.log"
    assert read_lines(log) == ([], 0)
    got = Collector()
    follower = LogFollower(reactor, str(log), 0, pool, got)
    follower.start()
    try:
        write(log, rec("stdout", "F", "first"))
        assert await got.take(1) == [("stdout", b"first\n")]
    finally:
        await follower.stop()


@pytest_twisted.ensureDeferred
async def test_stop_ends_the_callbacks(tmp_path: Path, pool: ThreadPoolService) -> None:
    """After stop() no line is delivered, even one read in the same batch."""
    log = tmp_path / "ctr.log"
    log.touch()
    got: list[LogLine] = []
    stopped: Deferred[None] = Deferred()

    def stop_at_first(line: LogLine) -> None:
        got.append(line)
        follower.stop().chainDeferred(stopped)

    follower = LogFollower(reactor, str(log), 0, pool, stop_at_first)
    follower.start()
    write(log, rec("stdout", "F", "a"), rec("stdout", "F", "b"), rec("stdout", "F", "c"))
    await stopped.addTimeout(TIMEOUT, reactor)
    assert data(got) == [("stdout", b"a\n")]

    # More lines: a second follower sees them, the stopped one does not.
    witness = Collector()
    second = LogFollower(reactor, str(log), 0, pool, witness)
    second.start()
    try:
        write(log, rec("stdout", "F", "d"))
        assert await witness.take(4) == [("stdout", x) for x in (b"a\n", b"b\n", b"c\n", b"d\n")]
    finally:
        await second.stop()
    assert data(got) == [("stdout", b"a\n")]


@pytest_twisted.ensureDeferred
async def test_finish_delivers_the_unfinished_line_and_stops(
    tmp_path: Path, pool: ThreadPoolService
) -> None:
    """When the container has exited, a prompt with no newline is delivered as it is."""
    log = tmp_path / "ctr.log"
    log.touch()
    got = Collector()
    follower = LogFollower(reactor, str(log), 0, pool, got)
    follower.start()
    write(log, rec("stdout", "F", "line"), rec("stdout", "P", "prompt> "))
    assert await got.take(1) == [("stdout", b"line\n")]
    await Deferred.fromCoroutine(follower.finish()).addTimeout(TIMEOUT, reactor)
    assert data(got.lines) == [("stdout", b"line\n"), ("stdout", b"prompt> ")]
