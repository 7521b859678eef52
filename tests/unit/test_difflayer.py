"""Commit layers from overlay upper dirs: whiteouts, opaque dirs, metadata, links, streaming."""

import hashlib
import io
import os
import socket
import stat
import tarfile
from pathlib import Path

import pytest

from podapi.storage.blobs import BlobStore
from podapi.storage.difflayer import ChunkReader, ingest_tree
from podapi.storage.layers import TAR_MEDIA, LayerStore
from podapi.storage.tarextract import extract_layer
from podapi.storage.tarwrite import tree_stream

MTIME = 1_600_000_000
#: sha256 of 1024 zero bytes: Docker's (and Go's) empty layer.
EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


def layer_bytes(upper: Path) -> bytes:
    return b"".join(tree_stream(str(upper), layer=True))


def members(upper: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(layer_bytes(upper)), mode="r:") as tar:
        return {m.name: m for m in tar.getmembers()}


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))


def test_whiteouts_become_empty_wh_files(tmp_path: Path) -> None:
    """A 0/0 character device is written as ``.wh.<name>``, an empty 0600 file."""
    (tmp_path / "etc").mkdir()
    whiteout(tmp_path / "gone")
    whiteout(tmp_path / "etc" / "passwd")
    found = members(tmp_path)
    assert set(found) == {"etc", ".wh.gone", "etc/.wh.passwd"}
    for name in (".wh.gone", "etc/.wh.passwd"):
        assert found[name].isreg()
        assert found[name].size == 0
        assert stat.S_IMODE(found[name].mode) == 0o600
    assert "gone" not in found


def test_opaque_directory_gets_its_marker_and_no_overlay_xattrs(tmp_path: Path) -> None:
    """``trusted.overlay.opaque=y``: the dir, then ``.wh..wh..opq``; overlay xattrs never leave."""
    opaque = tmp_path / "data"
    opaque.mkdir(mode=0o750)
    os.chmod(opaque, 0o750)
    os.setxattr(opaque, "trusted.overlay.opaque", b"y")
    os.setxattr(opaque, "trusted.overlay.origin", b"\x00\xfbhandle")
    os.setxattr(opaque, "user.kept", b"yes")
    (opaque / "new.txt").write_text("new")
    with tarfile.open(fileobj=io.BytesIO(layer_bytes(tmp_path))) as tar:
        assert tar.getnames() == ["data", "data/.wh..wh..opq", "data/new.txt"]
    found = members(tmp_path)
    assert found["data"].isdir()
    assert found["data"].pax_headers == {"SCHILY.xattr.user.kept": "yes"}
    marker = found["data/.wh..wh..opq"]
    assert marker.isreg() and marker.size == 0
    assert stat.S_IMODE(marker.mode) == 0o750


def test_other_xattrs_are_kept_byte_for_byte(tmp_path: Path) -> None:
    """Binary attributes such as ``security.capability`` survive; ``trusted.overlay.*`` do not."""
    # vfs_cap_data revision 2, effective, CAP_NET_RAW and CAP_SETFCAP (bit 31: not UTF-8).
    binary = b"\x01\x00\x00\x02" + b"\x00\x20\x00\x80" + bytes(12)
    target = tmp_path / "ping"
    target.write_bytes(b"elf")
    os.setxattr(target, "security.capability", binary)
    os.setxattr(target, "trusted.overlay.origin", b"x")
    info = members(tmp_path)["ping"]
    xattrs = {k for k in info.pax_headers if k.startswith("SCHILY.xattr.")}
    assert xattrs == {"SCHILY.xattr.security.capability"}
    value = info.pax_headers["SCHILY.xattr.security.capability"]
    assert value.encode("utf-8", "surrogateescape") == binary


def test_owner_mode_mtime_and_special_files(tmp_path: Path) -> None:
    """Owners, modes (setuid too), whole-second mtimes, symlinks, FIFOs, devices; no sockets."""
    tool = tmp_path / "tool"
    tool.write_bytes(b"#!/bin/sh\n")
    os.chown(tool, 1234, 5678)
    os.chmod(tool, 0o4755)
    os.utime(tool, (MTIME, MTIME + 0.75))
    (tmp_path / "link").symlink_to("/etc/shadow")
    os.mkfifo(tmp_path / "pipe")
    os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    try:
        found = members(tmp_path)
    finally:
        server.close()
    assert "sock" not in found
    info = found["tool"]
    assert (info.uid, info.gid, stat.S_IMODE(info.mode)) == (1234, 5678, 0o4755)
    assert info.mtime == MTIME
    assert found["link"].issym() and found["link"].linkname == "/etc/shadow"
    assert found["link"].size == 0  # a symlink is never followed into the host
    assert found["pipe"].isfifo()
    assert found["null"].ischr() and (found["null"].devmajor, found["null"].devminor) == (1, 3)


def test_hard_links_within_the_layer_stay_links(tmp_path: Path) -> None:
    """The first name carries the data; the next is a link to it."""
    (tmp_path / "a").write_text("shared")
    os.link(tmp_path / "a", tmp_path / "b")
    found = members(tmp_path)
    assert found["a"].isreg() and found["a"].size == 6
    assert found["b"].islnk() and found["b"].linkname == "a"


def test_entries_are_sorted_depth_first_without_the_root(tmp_path: Path) -> None:
    """Parents come before children, names sorted; the upper dir itself is no entry."""
    for path in ("b/y", "a/x", "c"):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text(path)
    with tarfile.open(fileobj=io.BytesIO(layer_bytes(tmp_path))) as tar:
        assert tar.getnames() == ["a", "a/x", "b", "b/y", "c"]


def test_empty_upper_dir_is_dockers_empty_layer(tmp_path: Path) -> None:
    """Go's layout: two zero blocks and no record padding, so the digest is Docker's."""
    data = layer_bytes(tmp_path)
    assert data == bytes(1024)
    assert "sha256:" + hashlib.sha256(data).hexdigest() == EMPTY_LAYER


def test_round_trip_through_layer_extraction(tmp_path: Path) -> None:
    """Extracting the layer rebuilds the upper dir's overlay form (whiteouts, opaque, links)."""
    upper, again = tmp_path / "upper", tmp_path / "again"
    upper.mkdir()
    again.mkdir()
    (upper / "dir").mkdir()
    os.setxattr(upper / "dir", "trusted.overlay.opaque", b"y")
    (upper / "dir" / "f").write_text("content")
    os.link(upper / "dir" / "f", upper / "dir" / "g")
    whiteout(upper / "deleted")
    extract_layer(ChunkReader(tree_stream(str(upper), layer=True)), str(again))  # type: ignore[arg-type]
    gone = os.lstat(again / "deleted")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(again / "dir", "trusted.overlay.opaque") == b"y"
    assert (again / "dir" / "f").read_text() == "content"
    assert os.stat(again / "dir" / "f").st_ino == os.stat(again / "dir" / "g").st_ino
    assert not (again / "dir" / ".wh..wh..opq").exists()


def test_chunk_reader_reads_across_chunks_and_seeks_back_over_its_last_read() -> None:
    """What ``LayerStore.ingest`` needs of a stream: read, tell, and a peek's seek back."""
    reader = ChunkReader([b"ab", b"", b"cde", b"f"])
    assert reader.tell() == 0
    assert reader.read(4) == b"abcd"
    assert reader.seek(1) == 1
    assert reader.read(2) == b"bc"
    assert reader.tell() == 3
    with pytest.raises(OSError):
        reader.seek(0)  # further back than the last read
    assert reader.read() == b"def"
    assert reader.read(10) == b""


def test_ingest_tree_streams_the_layer_into_the_store(tmp_path: Path) -> None:
    """The layer is hashed, stored as an uncompressed blob and extracted in one pass."""
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "new").write_text("written before the commit")
    whiteout(upper / "old")
    blobs = BlobStore(str(tmp_path / "store"))
    blobs.create()
    layers = LayerStore(str(tmp_path / "store"), blobs)
    layers.create()
    ingested = ingest_tree(layers, str(upper))
    expected = "sha256:" + hashlib.sha256(layer_bytes(upper)).hexdigest()
    assert ingested.diff_id == expected
    assert ingested.blob.digest == expected
    assert ingested.media_type == TAR_MEDIA
    staged = Path(ingested.staging_dir)
    assert (staged / "new").read_text() == "written before the commit"
    assert stat.S_ISCHR(os.lstat(staged / "old").st_mode)
