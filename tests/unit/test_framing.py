"""Docker's multiplexed stream frames and log lines as the logs endpoints send them."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podapi.http.framing import (
    STDERR,
    STDIN,
    STDOUT,
    FrameParser,
    FramingError,
    docker_timestamp,
    format_log_line,
    frame,
)
from podapi.storage.k8slog import LogLine

NS = 1_000_000_000


def test_frame_header_is_docker_s() -> None:
    """``[stream, 0, 0, 0, length as uint32 big-endian]`` then the payload (podman-api 1.11)."""
    assert frame(STDOUT, b"out\n") == b"\x01\x00\x00\x00\x00\x00\x00\x04out\n"
    assert frame(STDERR, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"
    assert frame(STDIN, b"x" * 0x01020304)[:8] == b"\x00\x00\x00\x00\x01\x02\x03\x04"


frames_strategy = st.lists(
    st.tuples(st.sampled_from([STDIN, STDOUT, STDERR]), st.binary(max_size=300))
)


@given(frames=frames_strategy, cuts=st.lists(st.integers(min_value=0, max_value=400)))
def test_parser_round_trips_across_any_chunking(
    frames: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    """However the stream is cut into reads, the parser gives back the same frames."""
    stream = b"".join(frame(kind, payload) for kind, payload in frames)
    parser = FrameParser()
    parsed: list[tuple[int, bytes]] = []
    rest = stream
    for size in [*cuts, len(stream)]:
        chunk, rest = rest[:size], rest[size:]
        parsed.extend(parser.feed(chunk))
    assert parsed == frames
    assert parser.pending == 0
    parser.close()


@given(frames=frames_strategy.filter(bool), cut=st.integers(min_value=1))
def test_parser_holds_an_unfinished_frame(frames: list[tuple[int, bytes]], cut: int) -> None:
    """A stream cut short gives the whole frames before the cut; close() complains mid-frame."""
    stream = b"".join(frame(kind, payload) for kind, payload in frames)
    cut = len(stream) - 1 - cut % len(stream)  # at least one byte short
    parser = FrameParser()
    parsed = parser.feed(stream[:cut])
    assert parsed == frames[: len(parsed)]
    assert len(parsed) < len(frames)
    assert parser.pending == cut - sum(8 + len(payload) for _, payload in parsed)
    if parser.pending:
        with pytest.raises(FramingError, match="ended inside a frame"):
            parser.close()
    else:
        parser.close()  # the cut fell between two frames


@pytest.mark.parametrize(
    "header",
    [b"\x07\x00\x00\x00\x00\x00\x00\x01", b"\x01\x00\x01\x00\x00\x00\x00\x01", b"HTTP/1.1"],
)
def test_parser_rejects_what_is_not_a_frame(header: bytes) -> None:
    with pytest.raises(FramingError):
        FrameParser().feed(header + b"x")


@pytest.mark.parametrize(
    ("time_ns", "text"),
    [
        (1_795_759_063 * NS + 123_456_789, "2026-11-27T05:57:43.123456789Z"),
        (1_795_759_063 * NS, "2026-11-27T05:57:43.000000000Z"),
        (1_795_759_063 * NS + 1, "2026-11-27T05:57:43.000000001Z"),
        (951_782_400 * NS + 500_000_000, "2000-02-29T00:00:00.500000000Z"),
    ],
)
def test_docker_timestamp_is_utc_with_nine_digits(time_ns: int, text: str) -> None:
    """As ``docker logs -t`` prints it (Docker's RFC3339NanoFixed): fixed width, ``Z``."""
    assert docker_timestamp(time_ns) == text


LINE = LogLine(time_ns=1_795_759_063 * NS + 120_000_000, stream="stderr", data=b"oops\n")


def test_log_line_raw_and_framed() -> None:
    """A TTY container's line goes out raw; otherwise framed on its own stream."""
    assert format_log_line(LINE, timestamps=False, multiplexed=False) == b"oops\n"
    assert format_log_line(LINE, timestamps=False, multiplexed=True) == frame(STDERR, b"oops\n")
    out = LogLine(time_ns=LINE.time_ns, stream="stdout", data=b"fine\n")
    assert FrameParser().feed(format_log_line(out, timestamps=False, multiplexed=True)) == [
        (STDOUT, b"fine\n")
    ]


def test_log_line_with_timestamps_has_the_time_inside_the_frame() -> None:
    """The time and a space prefix the text, and the frame length counts them."""
    stamped = b"2026-11-27T05:57:43.120000000Z oops\n"
    assert format_log_line(LINE, timestamps=True, multiplexed=False) == stamped
    assert FrameParser().feed(format_log_line(LINE, timestamps=True, multiplexed=True)) == [
        (STDERR, stamped)
    ]
