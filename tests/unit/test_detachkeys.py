"""Detach keys: Docker's notation, and spotting the sequence in a stream of input."""

import pytest

from podapi.errors import InvalidArgument
from podapi.http.detachkeys import DEFAULT_DETACH_KEYS, DetachDetector, parse_detach_keys


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        (DEFAULT_DETACH_KEYS, b"\x10\x11"),
        ("ctrl-a", b"\x01"),
        ("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", bytes([0, 27, 28, 29, 30, 31])),
        ("a,ctrl-z,X", b"a\x1aX"),
        ("", b""),
    ],
)
def test_notation(text: str, keys: bytes) -> None:
    assert parse_detach_keys(text) == keys


@pytest.mark.parametrize("text", ["ctrl-1", "ctrl-", "ab", "ctrl-ab", "a,,b", "\u0100", "é"])
def test_bad_notation_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_detach_keys(text)


def test_input_passes_until_the_sequence() -> None:
    detector = DetachDetector(b"\x10\x11")
    assert detector.feed(b"hello") == (b"hello", False)
    assert detector.feed(b"ab\x10") == (b"ab", False)  # held back: may start the sequence
    assert detector.feed(b"\x11rest") == (b"", True)


def test_a_broken_sequence_is_passed_on() -> None:
    detector = DetachDetector(b"\x10\x11")
    assert detector.feed(b"\x10x") == (b"\x10x", False)
    assert detector.feed(b"\x10\x10\x11") == (b"\x10", True)


def test_single_key_and_no_keys() -> None:
    assert DetachDetector(b"\x18").feed(b"ab\x18cd") == (b"ab", True)
    assert DetachDetector(b"").feed(b"\x10\x11") == (b"\x10\x11", False)
