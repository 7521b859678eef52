"""Docker's multiplexed stream framing, and log lines as the logs endpoints send them.

Without a TTY, attach, exec and logs send every piece of output as a frame:
an 8-byte header ``[stream, 0, 0, 0, length as uint32 big-endian]`` and then
the payload (podman-api.md 1.11; Podman's ``makeHTTPAttachHeader``, Docker's
``stdcopy``).  With a TTY the bytes go out raw.
"""

import struct
from datetime import UTC, datetime

from podapi.engine.times import NS
from podapi.storage.k8slog import LogLine

STDIN, STDOUT, STDERR = 0, 1, 2

_HEADER = struct.Struct(">B3sI")
_PADDING = b"\0\0\0"
#: Docker's stdcopy also knows 3 ("systemerr"); anything else is not a frame.
_MAX_STREAM = 3


class FramingError(ValueError):
    """The bytes are not a multiplexed stream."""


def frame(stream: int, data: bytes) -> bytes:
    """``data`` behind the 8-byte header for ``stream`` (:data:`STDOUT`, ...)."""
    return _HEADER.pack(stream, _PADDING, len(data)) + data


class FrameParser:
    """Splits a multiplexed byte stream back into ``(stream, payload)`` frames.

    Feed it the bytes as they arrive, cut anywhere; it returns the frames
    completed so far and keeps the rest.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add ``data``; return the frames it completed, in order.

        :raises FramingError: for a header that cannot be Docker's.
        """
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        pos = 0
        while len(self._buffer) - pos >= _HEADER.size:
            stream, padding, size = _HEADER.unpack_from(self._buffer, pos)
            if stream > _MAX_STREAM or padding != _PADDING:
                raise FramingError(f"bad frame header {bytes(self._buffer[pos : pos + 8])!r}")
            end = pos + _HEADER.size + size
            if end > len(self._buffer):
                break
            frames.append((stream, bytes(self._buffer[pos + _HEADER.size : end])))
            pos = end
        del self._buffer[:pos]
        return frames

    @property
    def pending(self) -> int:
        """How many bytes of an unfinished frame are held."""
        return len(self._buffer)

    def close(self) -> None:
        """The stream has ended.

        :raises FramingError: if it ended inside a frame.
        """
        if self._buffer:
            raise FramingError(f"stream ended inside a frame ({len(self._buffer)} bytes left)")


def docker_timestamp(time_ns: int) -> str:
    """The time as ``docker logs -t`` prints it: UTC, always nine fraction digits.

    Docker formats with ``jsonmessage.RFC3339NanoFixed``, unlike Go's
    ``RFC3339Nano`` (:func:`podapi.engine.times.rfc3339_nano`), which drops
    trailing zeros; the fixed width keeps the text columns aligned.
    """
    seconds, nanos = divmod(time_ns, NS)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def format_log_line(line: LogLine, *, timestamps: bool, multiplexed: bool) -> bytes:
    """One log line as the logs endpoints send it.

    :param timestamps: prefix :func:`docker_timestamp` and a space.
    :param multiplexed: frame it on :data:`STDOUT` or :data:`STDERR` (the
        container has no TTY); otherwise the bytes go out raw.
    """
    data = line.data
    if timestamps:
        data = docker_timestamp(line.time_ns).encode("ascii") + b" " + data
    if multiplexed:
        return frame(STDERR if line.stream == "stderr" else STDOUT, data)
    return data
