"""Time values as the Docker and Podman APIs write and accept them."""

import re
from datetime import UTC, datetime

from podapi.errors import InvalidArgument

NS = 1_000_000_000
#: Go's zero time, which both APIs print for "never".
ZERO_TIME = "0001-01-01T00:00:00Z"

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": NS,
    "m": 60 * NS,
    "h": 3600 * NS,
}
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_go_duration(text: str) -> int:
    """A Go duration (``1h30m``, ``10s``, ``-5m``) in nanoseconds."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if not body:
        raise ValueError(text)
    total, pos = 0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            raise ValueError(text)
        total += int(float(match.group(1)) * _UNIT_NS[match.group(2)])
        pos = match.end()
    if pos != len(body):
        raise ValueError(text)
    return sign * total


def parse_timestamp(value: str, now_ns: int) -> int:
    """``since``/``until`` values in nanoseconds since the epoch.

    Accepts Unix seconds with an optional fraction (``1700000000.5``), RFC 3339
    and shorter ISO dates (taken as UTC), and Go durations meaning "that long
    ago" (``10m``), as ``docker events`` and ``docker logs`` do.
    """
    value = value.strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", value):
            seconds, _, fraction = value.partition(".")
            return int(seconds) * NS + int((fraction + "000000000")[:9])
        match = _RFC3339.match(value)
        if match:
            date, clock, frac, zone = match.groups()
            clock = clock or "00:00:00"
            if clock.count(":") == 1:
                clock += ":00"
            zone = "+00:00" if zone in (None, "Z") else zone
            if ":" not in zone:
                zone = zone[:3] + ":" + zone[3:]
            parsed = datetime.fromisoformat(f"{date}T{clock}{zone}")
            nanos = int((frac or ".0")[1:].ljust(9, "0")[:9])
            return int(parsed.timestamp()) * NS + nanos
        return now_ns - parse_go_duration(value)
    except ValueError:
        raise InvalidArgument(f"invalid time value {value!r}") from None


def rfc3339_nano(ns: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC (trailing zeros of the fraction dropped)."""
    if ns <= 0:
        return ZERO_TIME
    seconds, nanos = divmod(ns, NS)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def human_duration(seconds: float) -> str:
    """Docker's ``units.HumanDuration``: ``Less than a second``, ``24 seconds``, ``2 hours``."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"
