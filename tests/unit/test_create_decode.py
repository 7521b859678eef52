"""Decoding Docker's create body: the terminal's size."""

from typing import Any

import pytest

from podapi.http.call import BadRequest
from podapi.http.compat.createbody import decode_create


def _decode(host: dict[str, Any]) -> Any:
    return decode_create({"Image": "x", "Tty": True, "HostConfig": host}, None)


@pytest.mark.parametrize(("size", "decoded"), [([24, 80], (24, 80)), ([0, 0], None), (None, None)])
def test_console_size(size: Any, decoded: Any) -> None:
    assert _decode({"ConsoleSize": size}).console_size == decoded


@pytest.mark.parametrize("size", [[24], [24, 80, 1], [-1, 80], ["24", 80], [True, 80], "24x80"])
def test_console_size_refused(size: Any) -> None:
    with pytest.raises(BadRequest):
        _decode({"ConsoleSize": size})
