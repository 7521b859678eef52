"""``podman image tree`` text pieces: go-units sizes and containers/image layer IDs."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podapi.engine.imagetree import human_size, layer_ids


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (10240, "10.24kB"),
        (2017280, "2.017MB"),
        (999_999, "1000kB"),  # Go's %.4g rounds without moving to the next unit
        (123_456_789_012, "123.5GB"),
    ],
)
def test_human_size_as_go_units_prints_it(size: int, text: str) -> None:
    """``HumanSizeWithPrecision(size, 4)``: decimal units, four significant digits."""
    assert human_size(size) == text


@given(st.integers(min_value=0, max_value=10**30))
def test_human_size_has_at_most_four_digits_and_a_unit(size: int) -> None:
    """Every size is a number of at most four significant digits and one known unit."""
    text = human_size(size)
    number = text.rstrip("BkMGTPEZY")
    assert text[len(number) :] in {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
    assert len(number.replace(".", "").lstrip("0")) <= 4 or "e" in number


def test_layer_ids_chain_each_layer_on_its_parent() -> None:
    """The bottom layer's ID is its diff ID; each above is sha256(parent + "+" + diff)."""
    a, b, c = ("sha256:" + ch * 64 for ch in "abc")
    first = "a" * 64
    second = hashlib.sha256(f"{first}+{'b' * 64}".encode()).hexdigest()
    third = hashlib.sha256(f"{second}+{'c' * 64}".encode()).hexdigest()
    assert layer_ids([a, b, c]) == [first, second, third]
    assert layer_ids([]) == []
