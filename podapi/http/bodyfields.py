"""Typed fields of JSON request bodies: a field of the wrong type is a 400 naming it.

An absent or ``null`` field reads as its empty value.  Fields are found as Go's
``encoding/json`` finds struct fields: the exact key, or else one that differs
only in case (podman-py sends ``Container`` where Podman's struct says
``container``).  Maps (labels, options) stay case-sensitive, as in Go.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from podapi.http.call import BadRequest


def json_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object."""
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return value


def field(body: Mapping[str, Any], key: str) -> Any:
    """The value of struct field ``key``: exact match first, then any case."""
    try:
        return GoStruct(body)[key]
    except KeyError:
        return None


class GoStruct(Mapping[str, Any]):
    """A JSON object as a Go struct sees it: every lookup is :func:`field`'s.

    For decoders written against plain keys (``SpecGenerator``'s ``image``): a
    client sending ``Image`` (Podman's ``test/apiv2`` does) is read as Podman
    reads it.  Iteration and ``len`` are the object's own keys.
    """

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._body = body

    def __getitem__(self, key: str) -> Any:
        if key in self._body:
            return self._body[key]
        folded = key.lower()
        for name, value in self._body.items():
            if name.lower() == folded:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._body)

    def __len__(self) -> int:
        return len(self._body)


def text(body: Mapping[str, Any], key: str, what: str) -> str:
    value = field(body, key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{what}.{key} must be a string")
    return value


def strings(body: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    value = field(body, key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{what}.{key} must be a list of strings")
    return tuple(value)


def string_map(body: Mapping[str, Any], key: str, what: str) -> dict[str, str]:
    value = field(body, key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise BadRequest(f"{what}.{key} must map strings to strings")
    return dict(value)


def boolean(body: Mapping[str, Any], key: str, what: str, default: bool = False) -> bool:
    value = field(body, key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{what}.{key} must be a boolean")
    return value


def objects(body: Mapping[str, Any], key: str, what: str) -> list[dict[str, Any]]:
    """A list of JSON objects (``IPAM.Config``, ``subnets``)."""
    value = field(body, key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BadRequest(f"{what}.{key} must be a list of JSON objects")
    return value
