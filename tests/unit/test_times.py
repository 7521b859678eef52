"""Time values as the APIs accept and print them."""

import pytest

from podapi.engine.times import NS, parse_go_duration, parse_timestamp, rfc3339_nano
from podapi.errors import InvalidArgument

NOW = 1_800_000_000 * NS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", 1_700_000_000 * NS),
        ("1700000000.5", 1_700_000_000 * NS + 500_000_000),
        ("1700000000.000000001", 1_700_000_000 * NS + 1),
        ("2023-11-14T22:13:20Z", 1_700_000_000 * NS),
        ("2023-11-14T22:13:20.25Z", 1_700_000_000 * NS + 250_000_000),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000 * NS),
        ("2023-11-14", 1_699_920_000 * NS),
        ("10m", NOW - 600 * NS),
        ("1h30m", NOW - 5400 * NS),
        ("1.5s", NOW - 1_500_000_000),
    ],
)
def test_parse_timestamp(text: str, expected: int) -> None:
    assert parse_timestamp(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "10x", "", "12:00"])
def test_bad_timestamps(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_timestamp(text, NOW)


def test_go_duration_sign_and_units() -> None:
    assert parse_go_duration("-5m") == -300 * NS
    assert parse_go_duration("250ms") == 250_000_000
    with pytest.raises(ValueError):
        parse_go_duration("5")


def test_rfc3339_nano_like_go() -> None:
    assert rfc3339_nano(0) == "0001-01-01T00:00:00Z"
    assert rfc3339_nano(1_700_000_000 * NS) == "2023-11-14T22:13:20Z"
    assert rfc3339_nano(1_700_000_000 * NS + 120_000_000) == "2023-11-14T22:13:20.12Z"
