"""The tar writer: Docker's entries, every file kind, lazy reading, trees that change."""

import io
import os
import socket
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from podapi.oci.scope import DIR_FLAGS
from podapi.storage.imageformats import BLOCK, CHUNK
from podapi.storage.tarextract import extract_into
from podapi.storage.tarwrite import TarStream, tree_stream

MTIME = 1_600_000_000


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def content(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def read_all(stream: TarStream) -> bytes:
    try:
        return b"".join(stream)
    finally:
        stream.close()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Every kind of entry the writer handles."""
    root = tmp_path / "root"
    (root / "d" / "e").mkdir(parents=True)
    (root / "d").chmod(0o750)
    (root / "small").write_bytes(b"small file")
    (root / "empty").write_bytes(b"")
    (root / "big").write_bytes(os.urandom(3 * CHUNK + 123))
    (root / "setuid").write_bytes(b"#!")
    (root / "setuid").chmod(0o4755)
    (root / "d" / "e" / "deep").write_bytes(b"deep")
    (root / "link").symlink_to("d/e/deep")
    os.link(root / "small", root / "d" / "hard")
    os.mkfifo(root / "fifo", 0o640)
    os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.chown(root / "small", 1234, 5678)
    os.setxattr(root / "small", "user.note", b"\xff\x00binary")
    os.setxattr(root / "d", "trusted.overlay.opaque", b"y")
    os.setxattr(root / "d", "user.kept", b"1")
    for path in root.rglob("*"):
        os.utime(path, ns=(MTIME * 10**9 + 999_999_999,) * 2, follow_symlinks=False)
    return root


def test_entries_follow_dockers_archiver(tree: Path) -> None:
    """Sorted depth first, dirs with a slash, whole seconds, later hard links name the first."""
    data = read_all(tree_stream(str(tree)))
    assert data.endswith(bytes(2 * BLOCK)) and len(data) % BLOCK == 0
    found = {m.name: m for m in members(data)}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        raw_names = [m.name for m in tar]
    assert raw_names == [
        "big",
        "d",
        "d/e",
        "d/e/deep",
        "d/hard",
        "empty",
        "fifo",
        "link",
        "null",
        "setuid",
        "small",
    ]
    assert b"d/\x00" in data and b"d/e/\x00" in data  # directory names end with "/"
    assert found["d"].isdir() and found["d"].mode == 0o750
    assert found["d/hard"].isfile()  # the first name of the inode carries the data
    assert found["small"].islnk() and found["small"].linkname == "d/hard"
    assert found["link"].issym() and found["link"].linkname == "d/e/deep"
    assert found["fifo"].isfifo() and found["fifo"].mode == 0o640
    assert found["null"].ischr() and (found["null"].devmajor, found["null"].devminor) == (1, 3)
    assert found["setuid"].mode == 0o4755
    assert all(m.mtime == MTIME for m in found.values())
    assert found["d/hard"].uid == 1234 and found["d/hard"].gid == 5678
    assert all(m.uname == "" and m.gname == "" for m in found.values())
    assert content(data, "big") == (tree / "big").read_bytes()
    assert content(data, "d/hard") == b"small file"
    assert content(data, "empty") == b""


def test_xattrs_are_kept_except_overlayfs_own(tree: Path) -> None:
    found = {m.name: m for m in members(read_all(tree_stream(str(tree))))}
    assert found["d"].pax_headers == {"SCHILY.xattr.user.kept": "1"}
    value = found["d/hard"].pax_headers["SCHILY.xattr.user.note"]
    assert value.encode("utf-8", "surrogateescape") == b"\xff\x00binary"


def test_what_our_extractor_unpacks_matches_the_tree(tree: Path, tmp_path: Path) -> None:
    """Round trip through ``extract_into``: contents, links, modes, owners, xattrs."""
    dest = tmp_path / "dest"
    dest.mkdir()
    extract_into(io.BytesIO(read_all(tree_stream(str(tree)))), str(dest))
    for path in tree.rglob("*"):
        copy = dest / path.relative_to(tree)
        a, b = path.lstat(), copy.lstat()
        assert (a.st_mode, a.st_uid, a.st_gid) == (b.st_mode, b.st_uid, b.st_gid), path
        assert b.st_mtime_ns == MTIME * 10**9, path
        if path.is_symlink():
            assert os.readlink(path) == os.readlink(copy)
        elif path.is_file():
            assert path.read_bytes() == copy.read_bytes()
    assert (dest / "small").stat().st_ino == (dest / "d" / "hard").stat().st_ino
    assert os.getxattr(dest / "small", "user.note") == b"\xff\x00binary"


def test_sockets_are_skipped_and_odd_names_kept_byte_for_byte(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(root / "sock"))
    try:
        raw = os.fsencode(root) + b"/caf\xe9-\xff"
        with open(raw, "wb") as f:
            f.write(b"latin-1 name")
        data = read_all(tree_stream(str(root)))
    finally:
        listener.close()
    (only,) = members(data)
    assert os.fsencode(only.name) == b"caf\xe9-\xff"


def test_chunks_are_bounded_and_files_read_only_when_asked(tmp_path: Path) -> None:
    """Memory stays at about a chunk: big files go out as read, small ones are gathered."""
    root = tmp_path / "root"
    root.mkdir()
    for i in range(300):
        (root / f"s{i:03}").write_bytes(os.urandom(10_000))
    (root / "z-big").write_bytes(os.urandom(5 * CHUNK))
    stream = tree_stream(str(root))
    sizes = []
    try:
        first = next(stream)
        sizes.append(len(first))
        assert CHUNK <= len(first) < CHUNK + 20_000  # about 100 small files, gathered
        sizes += [len(chunk) for chunk in stream]
    finally:
        stream.close()
    assert max(sizes) < 2 * CHUNK
    assert sum(sizes) % BLOCK == 0


def test_an_empty_tree_is_gos_empty_archive(tmp_path: Path) -> None:
    assert read_all(tree_stream(str(tmp_path))) == bytes(2 * BLOCK)


def test_close_releases_every_descriptor_at_any_point(tree: Path) -> None:
    before = open_fds()
    tree_stream(str(tree)).close()  # never started
    stream = tree_stream(str(tree))
    next(stream)  # somewhere inside the walk, files and directories open
    stream.close()
    stream.close()  # idempotent
    assert list(stream) == []
    assert open_fds() == before


def test_a_file_that_shrinks_or_grows_keeps_the_archive_valid(tmp_path: Path) -> None:
    """The header's size wins: missing bytes become zeros, extra bytes are left out."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "a-shrinks").write_bytes(b"x" * (3 * CHUNK))
    (root / "b-grows").write_bytes(b"y" * (2 * CHUNK))
    stream = tree_stream(str(root))
    try:
        chunks = [next(stream)]  # the header of a-shrinks: its size is promised
        os.truncate(root / "a-shrinks", CHUNK)
        while b"b-grows" not in chunks[-1]:
            chunks.append(next(stream))
        with open(root / "b-grows", "ab") as f:
            f.write(b"z" * CHUNK)
        chunks += list(stream)
    finally:
        stream.close()
    data = b"".join(chunks)
    assert content(data, "a-shrinks") == b"x" * CHUNK + bytes(2 * CHUNK)
    assert content(data, "b-grows") == b"y" * (2 * CHUNK)


def test_entries_removed_during_the_walk_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "a-big").write_bytes(os.urandom(2 * CHUNK))
    (root / "dir" / "b-gone").write_bytes(b"soon gone")
    (root / "dir" / "c-kept").write_bytes(b"kept")
    stream = tree_stream(str(root))
    try:
        chunks = [next(stream)]  # the directory was listed; a-big is being sent
        (root / "dir" / "b-gone").unlink()
        chunks += list(stream)
    finally:
        stream.close()
    assert [m.name for m in members(b"".join(chunks))] == ["dir", "dir/a-big", "dir/c-kept"]


def test_one_entry_is_archived_under_its_new_name_without_following(tree: Path) -> None:
    stream = TarStream(os.open(tree, DIR_FLAGS), "link", "renamed")
    (only,) = members(read_all(stream))
    assert only.name == "renamed" and only.issym() and only.linkname == "d/e/deep"


def test_directory_with_top_entry_and_prefix(tree: Path) -> None:
    """``docker cp c:/d``: the directory itself, then its contents below its name."""
    stream = TarStream(os.open(tree / "d", DIR_FLAGS), None, "d/", "d/")
    assert [m.name for m in members(read_all(stream))] == ["d", "d/e", "d/e/deep", "d/hard"]


def test_trees_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    fd = os.open(root, DIR_FLAGS)
    try:
        for _ in range(1200):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(fd)
        names = [m.name for m in members(read_all(tree_stream(str(root))))]
        assert len(names) == 1200
        assert names[-1] == "/".join(["d"] * 1200)
    finally:
        # shutil.rmtree (pytest's clean-up) recurses: too deep for it.
        subprocess.run(["rm", "-rf", str(root)], check=True)
