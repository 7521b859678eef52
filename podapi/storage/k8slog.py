"""Reading conmon's k8s-file container logs, once or as they grow.

conmon writes one record per line (its ``k8s-file`` log driver)::

    2026-11-27T07:18:06.811853188+00:00 stdout F hello

The time is RFC 3339 with nanoseconds and the host's numeric offset (never
``Z``, pitfall 10), the stream is ``stdout`` or ``stderr``, and the tag is
``F`` when the text ended with a newline (which conmon strips) or ``P`` when
the read from the container's pipe ended mid-line.  ``P`` records of a stream
are joined with the next ``F`` record of the same stream into one
:class:`LogLine`; the other stream's records may come in between.  conmon
never splits a record across files, but a ``P`` run may continue in the file
that replaced the old one after ``--log-size-max`` rotation.

:func:`read_lines` is blocking (run it through a :class:`~podapi.threads.Blocking`);
:class:`LogFollower` lives on the reactor and reads through one.
"""

import calendar
import functools
import os
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import BinaryIO, NamedTuple

from attrs import define, field, frozen
from twisted.internet.defer import Deferred
from twisted.internet.inotify import IN_CLOSE_WRITE, IN_CREATE, IN_MODIFY, IN_MOVED_TO, INotify
from twisted.internet.interfaces import IReactorFDSet
from twisted.python.filepath import FilePath

from podapi.logs import get_logger
from podapi.threads import Blocking

log = get_logger(__name__)

_NS = 1_000_000_000

#: Bytes read at a time, both forwards and backwards.
BLOCK_SIZE = 64 * 1024

#: A run of ``P`` records longer than this is handed out without waiting for
#: its ``F``: a container printing a progress bar with ``\r`` and never a
#: newline would otherwise make us hold an unbounded line.
MAX_LINE = 1024 * 1024

#: How many bytes one :class:`LogFollower` read takes before handing the lines
#: to the reactor, so catching up on a large file is done in slices.
FOLLOW_SLICE = 1024 * 1024

_STREAMS = {b"stdout": "stdout", b"stderr": "stderr"}
_TIME = re.compile(
    rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)",
)


@frozen
class LogLine:
    """One logical line of a container's output.

    :ivar time_ns: when conmon wrote the record that ended the line
        (nanoseconds since the epoch).
    :ivar stream: ``"stdout"`` or ``"stderr"``.
    :ivar data: the line's bytes, ending with ``b"\\n"`` unless the line was
        never finished (a partial line of a container that has exited).
    """

    time_ns: int
    stream: str
    data: bytes


class _Record(NamedTuple):
    # A tuple rather than an attrs value: one is made per record, on the hot path.
    time_ns: int
    stream: str
    partial: bool
    text: bytes


@functools.lru_cache(maxsize=256)
def _epoch_seconds(clock: bytes, zone: bytes) -> int:
    # Records written within the same second share this, hence the cache.
    offset = "+00:00" if zone == b"Z" else zone.decode()
    moment = datetime.fromisoformat(clock.decode() + offset)  # ValueError for 25:61 etc.
    return calendar.timegm(moment.utctimetuple())


def parse_time(stamp: bytes) -> int | None:
    """A k8s-file record time in nanoseconds since the epoch, or None if malformed.

    Any numeric offset is honoured (conmon writes the host's local offset);
    ``Z`` is accepted too.
    """
    match = _TIME.fullmatch(stamp)
    if match is None:
        return None
    clock, fraction, zone = match.groups()
    try:
        seconds = _epoch_seconds(clock, zone)
    except ValueError:
        return None
    nanos = int((fraction or b"0").ljust(9, b"0"))
    return seconds * _NS + nanos


def _parse_record(raw: bytes) -> _Record | None:
    """One record (its line without the newline), or None when it is malformed."""
    parts = raw.split(b" ", 3)
    if len(parts) < 3:
        return None
    stream = _STREAMS.get(parts[1])
    if stream is None:
        return None
    # The CRI format allows more tags after a ':'; only the first one says P or F.
    tag = parts[2].partition(b":")[0]
    if tag == b"F":
        partial = False
    elif tag == b"P":
        partial = True
    else:
        return None
    time_ns = parse_time(parts[0])
    if time_ns is None:
        return None
    # conmon always writes the space after the tag; tolerate its absence for an empty text.
    return _Record(time_ns, stream, partial, parts[3] if len(parts) == 4 else b"")


@define
class _Run:
    """The ``P`` records of one stream waiting for their ``F``."""

    parts: list[bytes] = field(factory=list)
    size: int = 0
    time_ns: int = 0
    #: Where the last record of the run ends in the file.
    end: int = 0


class _Assembler:
    """Joins ``P`` records with the ``F`` record that ends them, per stream."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}

    def feed(self, record: _Record, end: int) -> LogLine | None:
        """Take the record that ends at ``end``; return the line it completes, if any."""
        run = self._runs.get(record.stream)
        if record.partial:
            if run is None:
                run = self._runs[record.stream] = _Run()
            run.parts.append(record.text)
            run.size += len(record.text)
            run.time_ns = record.time_ns
            run.end = end
            if run.size < MAX_LINE:
                return None
            del self._runs[record.stream]
            return LogLine(record.time_ns, record.stream, b"".join(run.parts))
        if run is None:
            return LogLine(record.time_ns, record.stream, record.text + b"\n")
        del self._runs[record.stream]
        run.parts.append(record.text)
        run.parts.append(b"\n")
        return LogLine(record.time_ns, record.stream, b"".join(run.parts))

    def flush(self) -> list[tuple[int, LogLine]]:
        """The unfinished runs as lines without a newline, with where each ends.

        Oldest first; the runs are forgotten.
        """
        runs = sorted(self._runs.items(), key=lambda item: item[1].end)
        self._runs.clear()
        return [
            (run.end, LogLine(run.time_ns, stream, b"".join(run.parts))) for stream, run in runs
        ]


def _records_forward(f: BinaryIO, pos: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` for each newline-terminated line from ``pos`` on.

    An unterminated piece at the end of the file (a record being written, or
    torn by a crash) is not returned.
    """
    f.seek(pos)
    carry = b""
    while True:
        chunk = f.read(BLOCK_SIZE)
        if not chunk:
            return
        parts = (carry + chunk).split(b"\n")
        carry = parts.pop()
        for raw in parts:
            yield pos, raw
            pos += len(raw) + 1


def _complete_end(f: BinaryIO, size: int) -> int:
    """The offset just after the last newline within the first ``size`` bytes (0 if none)."""
    pos = size
    while pos > 0:
        n = min(BLOCK_SIZE, pos)
        pos -= n
        f.seek(pos)
        index = f.read(n).rfind(b"\n")
        if index >= 0:
            return pos + index + 1
    return 0


def _records_backward(f: BinaryIO, end: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` for each line of ``[0, end)``, last first; byte ``end - 1`` is a newline.

    The file is read in blocks from the end, so taking the last few lines of
    a large log costs only the blocks that hold them.
    """
    pos = end
    head = b""  # a line that began before ``pos``, with its newline
    while pos > 0:
        n = min(BLOCK_SIZE, pos)
        pos -= n
        f.seek(pos)
        data = f.read(n) + head
        parts = data.split(b"\n")  # parts[-1] is b"": data ends with a newline
        newline = pos + len(data) - 1
        for i in range(len(parts) - 2, 0, -1):
            start = newline - len(parts[i])
            yield start, parts[i]
            newline = start - 1
        head = parts[0] + b"\n"
        if pos == 0:
            yield 0, parts[0]


def _assemble(
    records: Iterator[tuple[int, bytes]], start: int, include_partial: bool
) -> tuple[list[tuple[int, LogLine]], int]:
    """Lines from records read from the line boundary ``start``.

    Returns each line with the offset where its last record ends, in file
    order, and the offset a follower should continue from: just after the
    last record that completed a line, so that re-reading from there rebuilds
    the runs still held back, without repeating a line.
    """
    assembler = _Assembler()
    lines: list[tuple[int, LogLine]] = []
    resume = start
    end = start
    for offset, raw in records:
        end = offset + len(raw) + 1
        record = _parse_record(raw)
        if record is None:
            continue
        line = assembler.feed(record, end)
        if line is not None:
            lines.append((end, line))
            resume = end
    if include_partial:
        # An exited container's unfinished lines go where their last record
        # is, not after everything else: a prompt stays before what followed it.
        for item in assembler.flush():
            lines.insert(_insertion_point(lines, item[0]), item)
        resume = end
    return lines, resume


def _insertion_point(lines: list[tuple[int, LogLine]], end: int) -> int:
    index = len(lines)
    while index > 0 and lines[index - 1][0] > end:
        index -= 1
    return index


def _tail_records(
    f: BinaryIO,
    end: int,
    tail: int,
    *,
    since_ns: int | None,
    until_ns: int | None,
    include_partial: bool,
) -> tuple[int, list[tuple[int, bytes]]]:
    """Walk back from ``end`` until the last ``tail`` lines in the window are covered.

    Returns a line boundary and the records from it to ``end``, oldest first;
    assembling those gives the same last lines as assembling the whole file.

    A line is counted at the record that completes it (an ``F``, or the last
    record of an unfinished run when ``include_partial``), which is where
    :func:`_assemble` puts it.  Enough lines are not enough: the walk goes on
    until every stream seen has an ``F`` older than all the lines wanted, so
    that no wanted line, and no held-back run, starts before the boundary (a
    stream with no record in the walked part cannot change those lines).
    With ``since_ns`` the walk also ends at the first line older than it:
    conmon writes times in order, so older lines are all outside the window.
    """
    records: list[tuple[int, bytes]] = []
    # Per stream seen: whether an F older than every wanted line was found.
    bounded: dict[str, bool] = {}
    counted = 0
    enough = tail == 0
    for offset, raw in _records_backward(f, end):
        records.append((offset, raw))
        record = _parse_record(raw)
        if record is None:
            continue
        if record.stream not in bounded:
            # The stream's last record: an F ends a line, a P an unfinished run.
            bounded[record.stream] = False
            counts = include_partial or not record.partial
        elif record.partial:
            continue  # part of the line already being walked back through
        else:
            counts = True
        # This record ends a line of its stream (the later one is whole).
        if not enough:
            if since_ns is not None and record.time_ns < since_ns:
                enough = True
            else:
                if counts and (until_ns is None or record.time_ns <= until_ns):
                    counted += 1
                    enough = counted >= tail
                continue
        if not record.partial:
            # Lines of this stream from just after here on are whole.
            bounded[record.stream] = True
            if all(bounded.values()):
                records.pop()  # this record ends a line that is not wanted
                return offset + len(raw) + 1, records[::-1]
    return 0, records[::-1]


def read_lines(
    path: str | os.PathLike[str],
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    tail: int | None = None,
    include_partial: bool = False,
) -> tuple[list[LogLine], int]:
    """The log's lines in a time window, and where a follower continues.

    Blocking: run it through a :class:`~podapi.threads.Blocking`.

    :param since_ns: only lines at or after this time (nanoseconds).
    :param until_ns: only lines at or before this time.
    :param tail: only the last ``tail`` of those lines (0: none, None: all).
        The file is then read backwards from its end in blocks, not whole.
    :param include_partial: also return runs of ``P`` records that no ``F``
        ended, without a newline, where they are in the file; for a container
        that has exited.  Otherwise they are held back.
    :returns: the lines, oldest first, and the offset to hand to
        :class:`LogFollower`: just after the last record that completed a
        line, so the follower rebuilds the held-back runs after it and repeats
        nothing.  (A run that began before that point, with the other stream
        writing lines since, loses its beginning; Podman loses such runs too.)
        With ``include_partial`` it is the end of the last whole record.

    Malformed records (a crash can tear one) are skipped; an unterminated
    piece at the end of the file is being written and is left for later.  A
    missing file has no lines.
    """
    if tail is not None and tail < 0:
        raise ValueError(f"tail must not be negative: {tail}")
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; the generators use it
    except FileNotFoundError:
        return [], 0
    with f:
        if tail is None:
            lines, resume = _assemble(_records_forward(f, 0), 0, include_partial)
        else:
            end = _complete_end(f, os.fstat(f.fileno()).st_size)
            start, records = _tail_records(
                f,
                end,
                tail,
                since_ns=since_ns,
                until_ns=until_ns,
                include_partial=include_partial,
            )
            lines, resume = _assemble(iter(records), start, include_partial)
    selected = [
        line
        for _, line in lines
        if (since_ns is None or line.time_ns >= since_ns)
        and (until_ns is None or line.time_ns <= until_ns)
    ]
    if tail is not None:
        selected = selected[len(selected) - tail :] if tail else []
    return selected, resume


class _FollowState:
    """The follower's file, offset and held-back data.

    Touched only inside the follower's ``io`` calls, one at a time, so it
    needs no lock.
    """

    def __init__(self, path: str, offset: int) -> None:
        self._path = path
        self._first_offset: int | None = offset
        self._file: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None
        self._pos = 0
        self._carry = b""
        self._assembler = _Assembler()

    def read(self, final: bool = False) -> tuple[list[LogLine], bool]:
        """Lines completed by what was written since the last call.

        Returns at most about :data:`FOLLOW_SLICE` bytes' worth, and whether
        more is waiting.  With ``final`` (the container has exited and conmon
        has written everything), unfinished runs are returned too, once the
        end of the file is reached.
        """
        lines: list[LogLine] = []
        budget = FOLLOW_SLICE
        while budget > 0:
            if self._file is None and not self._open():
                break
            budget -= self._drain(lines, budget)
            if budget <= 0:
                return lines, True
            if not self._replaced():
                break
        if final:
            lines.extend(line for _, line in self._assembler.flush())
        return lines, False

    def close(self) -> None:
        """Close the file (the follower is done)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> bool:
        try:
            f = open(self._path, "rb")  # noqa: SIM115 - kept open across reads
        except FileNotFoundError:
            return False
        stat = os.fstat(f.fileno())
        self._file = f
        self._identity = (stat.st_dev, stat.st_ino)
        offset, self._first_offset = self._first_offset or 0, None
        # An offset beyond the end belongs to a file since replaced.
        self._pos = offset if offset <= stat.st_size else 0
        self._carry = b""
        return True

    def _drain(self, lines: list[LogLine], budget: int) -> int:
        """Read up to ``budget`` bytes from the open file; return how many were read."""
        f = self._file
        assert f is not None
        if os.fstat(f.fileno()).st_size < self._pos:
            # Truncated in place (not what conmon does, but copytruncate-style
            # rotation does): start again from its beginning.
            self._pos = 0
            self._carry = b""
        f.seek(self._pos)
        taken = 0
        while taken < budget:
            chunk = f.read(min(BLOCK_SIZE, budget - taken))
            if not chunk:
                break
            taken += len(chunk)
            end = self._pos - len(self._carry)  # where the carried piece starts
            self._pos += len(chunk)
            parts = (self._carry + chunk).split(b"\n")
            # The last piece has no newline yet: keep it until the rest arrives.
            self._carry = parts.pop()
            for raw in parts:
                end += len(raw) + 1
                record = _parse_record(raw)
                if record is not None:
                    line = self._assembler.feed(record, end)
                    if line is not None:
                        lines.append(line)
        return taken

    def _replaced(self) -> bool:
        """Switch to a new file at the path if conmon replaced the old one.

        conmon's ``--log-size-max`` rotation closes its file, creates
        ``PATH.tmp`` and renames it over ``PATH``; everything it wrote to the
        old file was written before the rename, and we have just read the old
        file to its end.  Runs held back continue in the new file.
        """
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return False  # removed; keep what we have, there is nothing new to read
        if (stat.st_dev, stat.st_ino) == self._identity:
            return False
        # A piece without a newline at the end of the old file was torn.
        self.close()
        self._first_offset = 0
        return self._open()


#: Events on the log's directory that can mean new data for the log file.
_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE


class LogFollower:
    """Calls ``callback(line)`` for each line appended to a growing k8s-file log.

    inotify on the file's directory (so a replaced or newly created file is
    seen too) wakes it up; reads go through ``io``, in order and never two at
    once.  A partial line, and a run of ``P`` records, is held back until its
    end arrives.

    :param reactor: the reactor the inotify descriptor is registered with.
    :param path: the log file; its directory must exist.
    :param offset: where to start, as returned by :func:`read_lines`.
    :param io: where the file is read.
    :param callback: called on the reactor thread with each new line.
    """

    def __init__(
        self,
        reactor: IReactorFDSet,
        path: str,
        offset: int,
        io: Blocking,
        callback: Callable[[LogLine], None],
    ) -> None:
        self._reactor = reactor
        self.path = path
        self._name = os.fsencode(os.path.basename(path))
        self._io = io
        self._callback = callback
        self._state = _FollowState(path, offset)
        self._inotify: INotify | None = None
        self._wanted = False
        self._busy = False
        self._idle_waiters: list[Deferred[None]] = []
        self._finishing = False
        self._stopped = False
        self._closed = False

    def start(self) -> None:
        """Start watching, and read what was written since ``offset``."""
        if self._inotify is not None or self._stopped:
            return
        notifier = INotify(self._reactor)
        try:
            notifier.watch(
                FilePath(os.path.dirname(os.path.abspath(self.path))),
                mask=_MASK,
                callbacks=[self._event],
            )
        except BaseException:
            notifier.loseConnection()
            raise
        notifier.startReading()
        self._inotify = notifier
        # Watching before this read means nothing written in between is missed.
        self._poke()

    def stop(self) -> Deferred[None]:
        """Stop: no callback is made after this returns.

        The Deferred fires once a read still running has ended and the file
        is closed; callers may ignore it.
        """
        self._stopped = True
        self._unwatch()
        return Deferred.fromCoroutine(self._close())

    async def finish(self) -> None:
        """Deliver everything left, including unfinished lines, then stop.

        For a container that has exited: conmon has written all it will, so a
        run of ``P`` records will never get its ``F``.
        """
        if self._stopped or self._finishing:
            return
        self._finishing = True
        self._unwatch()
        await self._idle()
        more = True
        while more and not self._stopped:
            lines, more = await self._io(self._state.read, True)
            self._deliver(lines)
        await self.stop()

    def _event(self, _watch: object, path: FilePath[bytes], _mask: int) -> None:
        if path.basename() == self._name:
            self._poke()

    def _poke(self) -> None:
        self._wanted = True
        if not self._busy and not self._stopped and not self._finishing:
            self._busy = True
            Deferred.fromCoroutine(self._pump())

    async def _pump(self) -> None:
        try:
            # Events that arrive during a read set _wanted again; one more
            # read then picks up everything they announced.
            while self._wanted and not self._stopped and not self._finishing:
                self._wanted = False
                lines, more = await self._io(self._state.read)
                self._wanted = self._wanted or more
                self._deliver(lines)
        except Exception:
            # The next event tries again.
            log.failure("reading container log {path} failed", path=self.path)
        finally:
            self._busy = False
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _deliver(self, lines: list[LogLine]) -> None:
        for line in lines:
            if self._stopped:
                return
            try:
                self._callback(line)
            except Exception:
                log.failure("log line callback failed for {path}", path=self.path)

    async def _idle(self) -> None:
        """Return once no read is running."""
        if self._busy:
            waiter: Deferred[None] = Deferred()
            self._idle_waiters.append(waiter)
            await waiter

    async def _close(self) -> None:
        await self._idle()
        if not self._closed:
            self._closed = True
            await self._io(self._state.close)

    def _unwatch(self) -> None:
        notifier, self._inotify = self._inotify, None
        if notifier is not None:
            notifier.loseConnection()
