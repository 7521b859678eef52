"""Reading tar streams once in big chunks: the same members and bytes as tarfile, any chunking."""

import io
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podapi.storage.tarstream import TarReader, bytes_chunks, looks_like_tar, peek, tapped


def build(entries: list[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def chunked(data: bytes, size: int):  # type: ignore[no-untyped-def]
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return lambda: pieces.pop(0) if pieces else b""


def read_all(reader: TarReader, *, skip: set[str] = frozenset()) -> list[tuple[str, bytes]]:  # type: ignore[assignment]
    found = []
    while (member := reader.next()) is not None:
        data = b"" if member.name in skip else b"".join(bytes(p) for p in reader.data(member))
        found.append((member.name, data))
    return found


ENTRIES = [
    ("a", b"x" * 1000),
    ("long/" + "n" * 150, b"pax long name"),  # PAX header before the member
    ("empty", b""),
    ("b", bytes(range(256)) * 40),
]


@pytest.mark.parametrize("chunk", [1, 7, 511, 512, 513, 4096, 1 << 20])
@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_members_and_data_match_tarfile_whatever_the_chunking(chunk: int, fmt: int) -> None:
    archive = build(ENTRIES, fmt)
    assert read_all(TarReader(chunked(archive, chunk))) == ENTRIES


@given(st.lists(st.binary(max_size=2000), max_size=5), st.integers(1, 3000), st.data())
def test_unread_data_is_skipped(datas: list[bytes], chunk: int, data: st.DataObject) -> None:
    entries = [(f"f{i}", d) for i, d in enumerate(datas)]
    skip = set(data.draw(st.lists(st.sampled_from([n for n, _ in entries] or ["-"]))))
    found = read_all(TarReader(chunked(build(entries), chunk)), skip=skip)
    assert found == [(n, b"" if n in skip else d) for n, d in entries]


def test_empty_stream_and_zero_blocks_are_empty_archives() -> None:
    assert TarReader(bytes_chunks(b"")).next() is None
    assert TarReader(bytes_chunks(b"\0" * 1024)).next() is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda a: a[:100],  # a truncated first header
        lambda a: a[:700],  # data cut short
        lambda a: a[:1536] + b"garbage!" * 64 + a[2048:],  # a bad header after the first
        lambda a: b"not a tar at all" * 40,
    ],
)
def test_damage_is_an_error_not_a_silent_end(damage) -> None:  # type: ignore[no-untyped-def]
    archive = build([("a", b"x" * 1000), ("b", b"y" * 10)], tarfile.USTAR_FORMAT)
    with pytest.raises(tarfile.ReadError):
        read_all(TarReader(chunked(damage(archive), 300)))


def test_drain_lets_a_tap_see_every_byte() -> None:
    archive = build([("a", b"x" * 3000)])
    seen = []
    reader = TarReader(tapped(chunked(archive, 1000), lambda c: seen.append(bytes(c))))
    read_all(reader)
    reader.drain()
    assert b"".join(seen) == archive


def test_peek_gives_the_head_and_the_whole_stream_back() -> None:
    head, rest = peek(chunked(b"abcdefghij", 3), 5)
    assert head == b"abcde"
    assert b"".join(iter(rest, b"")) == b"abcdefghij"


def test_looks_like_tar() -> None:
    assert looks_like_tar(build([("a", b"x")]))
    assert looks_like_tar(b"\0" * 1024)
    assert not looks_like_tar(b'{"json": true}'.ljust(600))
    assert not looks_like_tar(b"short")
