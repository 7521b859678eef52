"""One API call: the request plus the decoding rules of its dialect.

Query decoding follows Podman (``pkg/api/handlers/decoder.go``): the compat
tree reads a boolean as true unless it is ``""``, ``0``, ``no``, ``false`` or
``none``; the libpod tree uses Go's ``strconv.ParseBool`` and rejects anything
else with 400.  ``filters`` is a JSON object of lists (Docker's older
``{"key": {"value": true}}`` form is accepted too).

JSON bodies are read as Go's ``json.NewDecoder(r.Body).Decode(&v)`` reads them
(Podman's and Docker's handlers both do): the first JSON value is the body and
whatever follows it is never read, so ``{"Name":"x"}}`` (a body Podman's own
``test/apiv2`` sends) is ``{"Name": "x"}``.  Our field checks come after.
"""

import functools
import json
from collections.abc import Mapping
from typing import Any

from attrs import frozen
from twisted.web.iweb import IRequest

from podapi.engine.shortnames import ShortNames
from podapi.errors import InvalidArgument

_COMPAT_FALSE = frozenset({"", "0", "no", "false", "none"})
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
#: Go's JSON whitespace, skipped before the first value.
_JSON_SPACE = " \t\r\n"
_DECODER = json.JSONDecoder()


class BadRequest(InvalidArgument):
    """The request itself could not be decoded (400)."""

    cause = "bad request"


class BodyTooLarge(InvalidArgument):
    """A JSON body over :data:`MAX_JSON_BODY` (413)."""

    cause = "request body too large"


#: The largest JSON body decoded (archives and other uploads are streamed, not decoded).
MAX_JSON_BODY = 32 * 1024 * 1024


@functools.lru_cache(maxsize=64)
def parse_version(version: str) -> tuple[int, ...]:
    """``1.41`` -> (1, 41); ``5.0.0-dev`` -> (5, 0, 0).  Unparsable parts count as 0.

    Remembered: nearly every request names one of the few versions clients send.
    """
    numbers = []
    for part in version.split("-", 1)[0].split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits) if digits else 0)
    return tuple(numbers)


@frozen
class ApiCall:
    """A request on one tree.

    :ivar request: the twisted.web request.
    :ivar libpod: True on the libpod tree.
    :ivar version: the ``/v{version}`` of the path, or None when unversioned.
    """

    request: IRequest
    libpod: bool
    version: str | None

    @property
    def path(self) -> str:
        """The request path, for error messages."""
        return self.request.uri.decode("utf-8", "replace")

    @property
    def short_names(self) -> ShortNames:
        """The tree's short-name policy: Podman's on the libpod tree, Docker's on the other."""
        return ShortNames.PODMAN if self.libpod else ShortNames.DOCKER

    def version_at_least(self, *minimum: int) -> bool:
        """Whether the path's API version is ``>= minimum`` (unversioned: newest)."""
        if self.version is None:
            return True
        return parse_version(self.version) >= minimum

    def _raw(self, name: str) -> list[bytes] | None:
        """The values of ``name``, matched as gorilla/schema matches: case-insensitively."""
        args = self.request.args
        key = name.encode()
        if key in args:
            return list(args[key])
        folded = key.lower()
        for other, values in args.items():
            if other.lower() == folded:
                return list(values)
        return None

    def _values(self, name: str) -> list[str]:
        return [v.decode("utf-8", "replace") for v in self._raw(name) or []]

    def has(self, name: str) -> bool:
        """Whether the query string names ``name`` (in any case)."""
        return self._raw(name) is not None

    def text(self, name: str, default: str | None = None) -> str | None:
        """The last value of ``name`` (gorilla/schema keeps the last one)."""
        values = self._values(name)
        return values[-1] if values else default

    def texts(self, name: str) -> list[str]:
        """Every value of a repeatable parameter (``names=a&names=b``)."""
        return self._values(name)

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean parameter, decoded as this tree decodes it."""
        value = self.text(name)
        if value is None:
            return default
        if not self.libpod:
            return value.lower() not in _COMPAT_FALSE
        if value in _GO_TRUE:
            return True
        if value in _GO_FALSE:
            return False
        raise BadRequest(
            f"failed to parse parameters for {self.path}: schema: error converting value "
            f"for {name!r}: invalid boolean {value!r}"
        )

    def integer(self, name: str, default: int | None = None) -> int | None:
        """An integer parameter; 400 when it is not one."""
        value = self.text(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise BadRequest(
                f"failed to parse parameters for {self.path}: schema: error converting value "
                f"for {name!r}: invalid integer {value!r}"
            ) from None

    def filters(self, name: str = "filters") -> dict[str, list[str]]:
        """The ``filters`` JSON object as ``{key: [values]}``; 400 when malformed."""
        raw = self.text(name)
        if not raw:
            return {}
        try:
            decoded = json.loads(raw)
        except ValueError as e:
            raise BadRequest(f"failed to parse filters for {self.path}: {e}") from None
        if not isinstance(decoded, Mapping):
            raise BadRequest(f"failed to parse filters for {self.path}: not a JSON object")
        result: dict[str, list[str]] = {}
        for key, value in decoded.items():
            if isinstance(value, list):
                result[key] = [str(v) for v in value]
            elif isinstance(value, Mapping):  # Docker's {"key": {"value": true}} form
                result[key] = [str(k) for k, on in value.items() if on]
            else:
                result[key] = [str(value)]
        return result

    def body_bytes(self) -> bytes:
        """The whole (small) request body."""
        content = self.request.content
        if content is None:
            return b""
        content.seek(0)
        return content.read()

    def json_body(self, *, empty_ok: bool = True) -> Any:
        """The JSON body; an empty body means ``{}`` unless ``empty_ok`` is false.

        A body over :data:`MAX_JSON_BODY` is a 413 before it is read into memory.
        """
        content = self.request.content
        if content is not None and content.seek(0, 2) > MAX_JSON_BODY:
            raise BodyTooLarge(f"the JSON body is larger than {MAX_JSON_BODY} bytes")
        raw = self.body_bytes()
        if not raw.strip():
            if empty_ok:
                return {}
            raise BadRequest("decode(): request body is empty: a JSON object is required")
        try:
            value, _end = _DECODER.raw_decode(raw.decode("utf-8").lstrip(_JSON_SPACE))
        except ValueError as e:
            raise BadRequest(f"failed to decode parameters for {self.path}: {e}") from None
        return value

    def header(self, name: str) -> str | None:
        """A request header as text."""
        value = self.request.getHeader(name.encode())
        if value is None:
            return None
        return value.decode("latin-1") if isinstance(value, bytes) else str(value)
