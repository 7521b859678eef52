"""Safe tar extraction: layer whiteouts, metadata, and hostile archives that must stay inside."""

import bz2
import contextlib
import gzip
import hashlib
import io
import lzma
import os
import stat
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from podapi.errors import InvalidArgument, NotFound
from podapi.storage.tarextract import (
    ExtractStats,
    InvalidArchive,
    clean_name,
    compression_of,
    extract_into,
    extract_layer,
)
from tests.fixtures.images import layer_tar

MTIME = 1_600_000_000
Entry = tuple[tarfile.TarInfo, bytes | None]


def entry(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes | None = None,
    *,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    mtime: int = MTIME,
    linkname: str = "",
    dev: tuple[int, int] = (0, 0),
    xattrs: dict[str, bytes] | None = None,
) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    info.linkname = linkname
    info.devmajor, info.devminor = dev
    info.pax_headers = {
        "SCHILY.xattr." + key: value.decode("utf-8", "surrogateescape")
        for key, value in (xattrs or {}).items()
    }
    if kind == tarfile.REGTYPE:
        data = data if data is not None else b""
        info.size = len(data)
    return info, data


def reg(name: str, data: bytes = b"data", **kwargs: object) -> Entry:
    return entry(name, tarfile.REGTYPE, data, **kwargs)  # type: ignore[arg-type]


def dir_(name: str, **kwargs: object) -> Entry:
    kwargs.setdefault("mode", 0o755)
    return entry(name, tarfile.DIRTYPE, **kwargs)  # type: ignore[arg-type]


def sym(name: str, target: str, **kwargs: object) -> Entry:
    return entry(name, tarfile.SYMTYPE, linkname=target, mode=0o777, **kwargs)  # type: ignore[arg-type]


def hard(name: str, target: str) -> Entry:
    return entry(name, tarfile.LNKTYPE, linkname=target)


def make_tar(*entries: Entry) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


class CountingReader(io.RawIOBase):
    """A read-only stream that counts what was read, like a hashing wrapper."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.count += len(data)
        return data


def layer(data: bytes, dest: Path) -> ExtractStats:
    return extract_layer(io.BytesIO(data), str(dest))


def xattrs(path: Path) -> dict[str, bytes]:
    return {
        name: os.getxattr(path, name, follow_symlinks=False)
        for name in os.listxattr(path, follow_symlinks=False)
    }


# -- what gets written -------------------------------------------------------------


def test_metadata_of_every_kind_is_kept(tmp_path: Path) -> None:
    """Files, dirs, symlinks, hardlinks, devices and FIFOs keep mode, owner, mtime, xattrs."""
    cap = b"\x01\x00\x00\x02\xff\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    data = make_tar(
        dir_("d", mode=0o750, uid=1000, gid=1001, mtime=MTIME + 1, xattrs={"user.dir": b"1"}),
        reg(
            "d/f",
            b"hello",
            mode=0o4755,
            uid=7,
            gid=8,
            mtime=MTIME + 2,
            xattrs={"user.k": b"v", "security.capability": cap},
        ),
        dir_("d/sticky", mode=0o1777),
        sym("d/l", "/nonexistent/target", uid=5, gid=6, mtime=MTIME + 3),
        hard("d/h", "d/f"),
        entry("d/c", tarfile.CHRTYPE, mode=0o666, uid=3, gid=4, dev=(1, 3), mtime=MTIME + 4),
        entry("d/b", tarfile.BLKTYPE, mode=0o660, dev=(7, 0)),
        entry("d/p", tarfile.FIFOTYPE, mode=0o640, uid=9, gid=10, mtime=MTIME + 5),
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    assert layer(data, dest) == ExtractStats(files=8, size=5)

    d = (dest / "d").lstat()
    assert (stat.S_IMODE(d.st_mode), d.st_uid, d.st_gid, d.st_mtime) == (
        0o750,
        1000,
        1001,
        MTIME + 1,
    )
    assert xattrs(dest / "d") == {"user.dir": b"1"}
    f = (dest / "d/f").lstat()
    assert (dest / "d/f").read_bytes() == b"hello"
    assert (stat.S_IMODE(f.st_mode), f.st_uid, f.st_gid, f.st_mtime) == (0o4755, 7, 8, MTIME + 2)
    assert f.st_nlink == 2
    assert xattrs(dest / "d/f") == {"user.k": b"v", "security.capability": cap}
    assert stat.S_IMODE((dest / "d/sticky").lstat().st_mode) == 0o1777
    link = (dest / "d/l").lstat()
    assert os.readlink(dest / "d/l") == "/nonexistent/target"
    assert (link.st_uid, link.st_gid, link.st_mtime) == (5, 6, MTIME + 3)
    assert (dest / "d/h").lstat().st_ino == f.st_ino
    c = (dest / "d/c").lstat()
    assert stat.S_ISCHR(c.st_mode) and os.major(c.st_rdev) == 1 and os.minor(c.st_rdev) == 3
    assert (stat.S_IMODE(c.st_mode), c.st_uid, c.st_gid, c.st_mtime) == (0o666, 3, 4, MTIME + 4)
    b = (dest / "d/b").lstat()
    assert stat.S_ISBLK(b.st_mode) and os.major(b.st_rdev) == 7
    p = (dest / "d/p").lstat()
    assert stat.S_ISFIFO(p.st_mode)
    assert (stat.S_IMODE(p.st_mode), p.st_uid, p.st_gid, p.st_mtime) == (0o640, 9, 10, MTIME + 5)


def test_directory_metadata_applies_after_children(tmp_path: Path) -> None:
    """A read-only dir still gets its children, and its mtime is the tar's, not 'now'."""
    data = make_tar(
        dir_("ro", mode=0o555, mtime=MTIME),
        reg("ro/x"),
        dir_("ro/sub", mode=0o500, mtime=MTIME + 10),
        reg("ro/sub/y"),
        reg("implicit/parent/z"),
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    layer(data, dest)
    assert (dest / "ro/x").read_bytes() == b"data"
    assert (dest / "ro/sub/y").exists()
    ro = (dest / "ro").stat()
    assert (stat.S_IMODE(ro.st_mode), ro.st_mtime) == (0o555, MTIME)
    assert (dest / "ro/sub").stat().st_mtime == MTIME + 10
    assert stat.S_IMODE((dest / "implicit/parent").stat().st_mode) == 0o755


def test_big_file_is_copied_exactly(tmp_path: Path) -> None:
    """Data larger than the copy buffer, and not a multiple of it, arrives intact."""
    payload = os.urandom(3 * 1024 * 1024 + 12345)
    dest = tmp_path / "dest"
    dest.mkdir()
    stats = layer(make_tar(reg("big", payload), reg("empty", b"")), dest)
    assert stats == ExtractStats(files=2, size=len(payload))
    assert hashlib.sha256((dest / "big").read_bytes()).digest() == hashlib.sha256(payload).digest()
    assert (dest / "empty").read_bytes() == b""


def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    """Like tar: a dir over a dir merges, anything else replaces."""
    data = make_tar(
        dir_("keep"),
        reg("keep/a"),
        dir_("keep", mode=0o700),
        reg("file_then_dir"),
        dir_("file_then_dir"),
        reg("file_then_dir/x"),
        dir_("dir_then_file"),
        reg("dir_then_file/x"),
        reg("dir_then_file", b"now a file"),
        sym("link_then_file", "keep"),
        reg("link_then_file", b"plain"),
        reg("twice", b"one"),
        reg("twice", b"two"),
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    layer(data, dest)
    assert (dest / "keep/a").exists()
    assert stat.S_IMODE((dest / "keep").stat().st_mode) == 0o700
    assert (dest / "file_then_dir/x").exists()
    assert (dest / "dir_then_file").read_bytes() == b"now a file"
    assert not (dest / "link_then_file").is_symlink()
    assert (dest / "link_then_file").read_bytes() == b"plain"
    assert (dest / "twice").read_bytes() == b"two"


def test_leading_slash_and_dot_are_dropped(tmp_path: Path) -> None:
    """Docker relativises names: '/abs/x' and './rel' land under the root; '.' is skipped."""
    dest = tmp_path / "dest"
    dest.mkdir()
    layer(make_tar(dir_("./", mode=0o700), reg("/abs/x"), reg("./rel"), reg("a/./b/../c")), dest)
    assert (dest / "abs/x").exists() and (dest / "rel").exists() and (dest / "a/c").exists()
    assert stat.S_IMODE(dest.stat().st_mode) != 0o700


def test_clean_name() -> None:
    """Names normalise to components; escapes, NULs and empty names are refused."""
    assert clean_name("/a//./b/") == ["a", "b"]
    assert clean_name("./") == []
    assert clean_name("a/b/../c") == ["a", "c"]
    for bad in ["", "..", "../x", "a/../../x", "/../x", "a\0b"]:
        with pytest.raises(InvalidArchive):
            clean_name(bad)


# -- whiteouts and overlay attributes ------------------------------------------------


def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    """'.wh.NAME' becomes a 0/0 char device; '.wh..wh..opq' becomes the opaque xattr."""
    data = layer_tar(
        files={"data/keep.txt": b"k", "opq/new.txt": b"n"},
        whiteouts=["data/gone.txt", "top"],
        opaque=["opq"],
    )
    # Append an opaque marker for the root itself: cut the end blocks off first.
    end = -(-len(data.rstrip(b"\0")) // 512) * 512
    data = data[:end] + make_tar(reg(".wh..wh..opq", b""))
    dest = tmp_path / "dest"
    dest.mkdir()
    layer(data, dest)
    for path in (dest / "data/gone.txt", dest / "top"):
        st = path.lstat()
        assert stat.S_ISCHR(st.st_mode)
        assert (st.st_rdev, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0, 0, 0, 0)
    assert os.getxattr(dest / "opq", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(dest, "trusted.overlay.opaque") == b"y"
    assert (dest / "opq/new.txt").read_bytes() == b"n"
    names = {p.name for p in dest.rglob("*")}
    assert not any(name.startswith(".wh.") for name in names)


def test_whiteout_names_are_plain_files_in_extract_into(tmp_path: Path) -> None:
    """extract_into does no whiteout conversion."""
    root = tmp_path / "root"
    root.mkdir()
    extract_into(io.BytesIO(make_tar(reg(".wh.x", b""), reg("d/.wh..wh..opq", b""))), str(root))
    assert (root / ".wh.x").is_file() and (root / "d/.wh..wh..opq").is_file()
    assert "trusted.overlay.opaque" not in os.listxattr(root / "d")


def test_overlay_xattrs_in_the_tar_are_dropped(tmp_path: Path) -> None:
    """trusted.overlay.* from the tar never reaches the layer; other xattrs do."""
    overlay = {"trusted.overlay.opaque": b"y", "trusted.overlay.origin": b"\x00\xfb"}
    data = make_tar(
        dir_("d", xattrs={**overlay, "trusted.keep": b"1"}),
        reg("d/f", xattrs={**overlay, "user.keep": b"2"}),
        sym("d/l", "f", xattrs=overlay),
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    layer(data, dest)
    assert xattrs(dest / "d") == {"trusted.keep": b"1"}
    assert xattrs(dest / "d/f") == {"user.keep": b"2"}
    assert xattrs(dest / "d/l") == {}


# -- the stream --------------------------------------------------------------------


@pytest.mark.parametrize("into", [False, True], ids=["layer", "into"])
def test_stream_is_read_to_eof(tmp_path: Path, into: bool) -> None:
    """Every byte, including end blocks and padding, passes through the reader."""
    data = make_tar(reg("a", os.urandom(5000)), dir_("d")) + b"\0" * 20480
    reader = CountingReader(data)
    dest = tmp_path / "dest"
    dest.mkdir()
    if into:
        extract_into(reader, str(dest))  # type: ignore[arg-type]
    else:
        extract_layer(reader, str(dest))  # type: ignore[arg-type]
    assert reader.count == len(data)


def test_empty_stream_is_an_empty_archive(tmp_path: Path) -> None:
    """As in Go's archive/tar, zero bytes is an archive without entries."""
    assert layer(b"", tmp_path) == ExtractStats(0, 0)


@pytest.mark.parametrize(
    "data",
    [
        b"this is not a tar archive" * 40,
        make_tar(reg("a", b"x" * 4000))[:1500],
        make_tar(reg("a", b"x")).rstrip(b"\0") + b"\0" * 511 + b"garbage!" * 64,
    ],
    ids=["garbage", "truncated-data", "garbage-after-member"],
)
def test_corrupt_tar_is_invalid(tmp_path: Path, data: bytes) -> None:
    """Garbage, truncation and a bad second header raise InvalidArchive."""
    with pytest.raises(InvalidArchive) as info:
        layer(data, tmp_path)
    assert info.value.cause == "invalid tar"


COMPRESSORS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_extract_into_reads_compressed_tars(tmp_path: Path, compression: str) -> None:
    """Docker's archive upload may be gzip, bzip2 or xz: decompressed as it is read."""
    data = COMPRESSORS[compression](make_tar(reg("d/f", b"inside"), reg("g", os.urandom(70_000))))
    assert compression_of(data) == compression
    reader = CountingReader(data)
    stats = extract_into(reader, str(tmp_path))  # type: ignore[arg-type]
    assert (tmp_path / "d" / "f").read_bytes() == b"inside"
    assert stats.files == 2 and reader.count == len(data)


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_corrupt_compressed_tar_is_invalid(tmp_path: Path, compression: str) -> None:
    """A truncated compressed stream is a 400-class InvalidArchive, not an OSError."""
    data = COMPRESSORS[compression](make_tar(reg("a", os.urandom(20_000))))
    with pytest.raises(InvalidArchive):
        extract_into(io.BytesIO(data[: len(data) // 2]), str(tmp_path))


def test_zstd_upload_is_refused(tmp_path: Path) -> None:
    """zstd is detected and refused (Docker's API lists gzip, bzip2 and xz only)."""
    with pytest.raises(InvalidArchive):
        extract_into(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\0" * 100), str(tmp_path))


# -- hostile archives ----------------------------------------------------------------

TOKEN = f"podapi-test-{uuid.uuid4().hex[:12]}"
HOST_DIRS = ("/", "/etc", "/tmp")


def hostile_cases() -> Iterator[tuple[str, list[Entry]]]:
    yield "dotdot", [reg("../../" + TOKEN)]
    yield "dotdot-into-sentinel", [reg("../sentinel/file", b"pwned")]
    yield "absolute", [reg(f"/etc/{TOKEN}")]
    yield "dotdot-after-dir", [reg(f"a/../../{TOKEN}")]
    yield "symlink-abs-parent", [sym("evil", "/etc"), reg(f"evil/{TOKEN}")]
    yield "symlink-up-parent", [sym("evil", "../../.."), reg(f"evil/{TOKEN}")]
    yield "symlink-sentinel-parent", [sym("evil", "../sentinel"), reg("evil/file", b"pwned")]
    yield (
        "symlink-chain",
        [sym("a", "b/../../.."), dir_("b"), sym("c", "a/etc"), reg(f"c/{TOKEN}")],
    )
    yield "symlink-last-abs", [sym(TOKEN, f"/etc/{TOKEN}"), reg(TOKEN, b"replaced")]
    yield "symlink-last-sentinel", [sym("last", "../sentinel/file"), reg("last", b"pwned")]
    yield "symlink-last-dir", [sym("last", "../sentinel"), dir_("last", mode=0o777)]
    yield "symlink-last-hardlink", [reg("f"), sym("last", "../sentinel/file"), hard("last", "f")]
    yield (
        "symlink-last-fifo",
        [
            sym("last", f"/tmp/{TOKEN}"),
            entry("last", tarfile.FIFOTYPE, mode=0o666),
        ],
    )
    yield "symlink-loop", [sym("a", "b"), sym("b", "a"), reg("a/x")]
    yield "hardlink-abs", [hard("h", "/etc/passwd")]
    yield "hardlink-dotdot", [hard("h", "../../etc/passwd")]
    yield "hardlink-sentinel", [hard("h", "../sentinel/file")]
    yield "hardlink-through-symlink", [sym("evil", "/etc"), hard("h", "evil/passwd")]
    yield "hardlink-via-symlink-up", [sym("up", "../.."), hard("h", "up/sentinel/file")]
    yield "fifo-through-symlink", [sym("evil", "/tmp"), entry(f"evil/{TOKEN}", tarfile.FIFOTYPE)]
    yield "dir-through-symlink", [sym("evil", "../sentinel"), dir_("evil/sub", mode=0o777)]
    yield "nul-name", [reg("x\0" + "y" * 120)]
    yield "whiteout-through-symlink", [sym("evil", "/etc"), reg("evil/.wh.passwd", b"")]
    yield "opaque-through-symlink", [sym("evil", "../sentinel"), reg("evil/.wh..wh..opq", b"")]
    yield "whiteout-dotdot", [reg("a/.wh...", b"")]


def snapshot(top: Path, skip: Path) -> dict[str, tuple[object, ...]]:
    """Every path under ``top`` outside ``skip``, with what an attack could change."""
    found: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if Path(dirpath) == skip:
            dirnames.clear()
            continue
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            if path == skip:
                continue
            st = path.lstat()
            content = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
            found[str(path)] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_nlink,
                st.st_mtime_ns,
                content,
                sorted(os.listxattr(path, follow_symlinks=False)),
            )
    return found


def host_state() -> tuple[object, ...]:
    passwd = os.lstat("/etc/passwd")
    return (
        (passwd.st_mode, passwd.st_nlink, passwd.st_mtime_ns, passwd.st_uid),
        os.listxattr("/etc"),
        [name for d in HOST_DIRS for name in os.listdir(d) if TOKEN in name],
    )


Extract = Callable[[BinaryIO, Path], object]


def _via_layer(stream: BinaryIO, root: Path) -> object:
    return extract_layer(stream, str(root))


def _via_into(stream: BinaryIO, root: Path) -> object:
    return extract_into(stream, str(root))


def _via_into_subdir(stream: BinaryIO, root: Path) -> object:
    (root / "app").mkdir(exist_ok=True)
    return extract_into(stream, str(root), "/app")


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Path]:
    """``box/root`` to extract into, next to ``box/sentinel/file``; checks nothing else moved."""
    root = tmp_path / "box" / "root"
    root.mkdir(parents=True)
    sentinel = tmp_path / "box" / "sentinel"
    sentinel.mkdir()
    (sentinel / "file").write_bytes(b"sentinel")
    before = snapshot(tmp_path, root)
    host_before = host_state()
    assert not host_before[2], "leftovers of an earlier run"
    yield root
    assert snapshot(tmp_path, root) == before
    assert host_state() == host_before
    assert (sentinel / "file").read_bytes() == b"sentinel"


@pytest.mark.parametrize(
    "how", [_via_layer, _via_into, _via_into_subdir], ids=["layer", "into", "into-app"]
)
@pytest.mark.parametrize(
    ("entries"), [c[1] for c in hostile_cases()], ids=[c[0] for c in hostile_cases()]
)
def test_hostile_archive_stays_inside(box: Path, entries: list[Entry], how: Extract) -> None:
    """Nothing outside the root is created or changed; the archive is refused or contained."""
    with contextlib.suppress(InvalidArchive):
        how(io.BytesIO(make_tar(*entries)), box)
    # Whatever got written is inside root and never a link to a file outside it.
    for path in box.rglob("*"):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            assert os.path.samefile(path, box / ("app/f" if (box / "app").exists() else "f"))


def test_symlink_as_last_component_is_replaced(box: Path) -> None:
    """A regular entry named like an earlier absolute symlink replaces the link."""
    extract_layer(
        io.BytesIO(make_tar(sym(TOKEN, f"/etc/{TOKEN}"), reg(TOKEN, b"replaced"))), str(box)
    )
    assert not (box / TOKEN).is_symlink()
    assert (box / TOKEN).read_bytes() == b"replaced"


@pytest.mark.parametrize("how", [_via_layer, _via_into], ids=["layer", "into"])
def test_symlinked_parent_resolves_inside_root(box: Path, how: Extract) -> None:
    """'evil -> /etc' + 'evil/f' writes root/etc/f; 'up -> ../../..' + 'up/g' writes root/g."""
    how(
        io.BytesIO(
            make_tar(sym("evil", "/etc"), reg(f"evil/{TOKEN}"), sym("up", "../../.."), reg("up/g"))
        ),
        box,
    )
    assert (box / "etc" / TOKEN).read_bytes() == b"data"
    assert (box / "g").read_bytes() == b"data"


@pytest.mark.parametrize(
    "entries",
    [
        [hard("h", "/etc/passwd")],
        [hard("h", "../../etc/passwd")],
        [sym("evil", "/etc"), hard("h", "evil/passwd")],
        [hard("h", "missing")],
        [dir_("d"), hard("h", "d")],
    ],
    ids=["abs", "dotdot", "through-symlink", "missing", "directory"],
)
def test_bad_hardlink_is_invalid(box: Path, entries: list[Entry]) -> None:
    """A hard link must name an existing non-directory inside the root."""
    with pytest.raises(InvalidArchive):
        extract_layer(io.BytesIO(make_tar(*entries)), str(box))
    assert not (box / "h").exists()


def test_hardlink_to_absolute_name_inside_root(tmp_path: Path) -> None:
    """An absolute hard link target is root-relative, as in Docker."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\n")
    extract_into(io.BytesIO(make_tar(hard("h", "/etc/passwd"))), str(root))
    assert (root / "h").stat().st_ino == (root / "etc/passwd").stat().st_ino


# -- extract_into ------------------------------------------------------------------


def test_extract_into_target_directory(tmp_path: Path) -> None:
    """Entries land under target; climbing above target is refused even inside root."""
    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    stats = extract_into(
        io.BytesIO(make_tar(reg("a"), dir_("d"), reg("d/b", b"12"))), str(root), "/app"
    )
    assert stats == ExtractStats(files=3, size=6)
    assert (root / "app/a").exists() and (root / "app/d/b").exists()
    with pytest.raises(InvalidArchive):
        extract_into(io.BytesIO(make_tar(reg("../x"))), str(root), "/app")
    assert not (root / "x").exists()


def test_extract_into_root_symlink_to_host_path(box: Path) -> None:
    """root/etc -> an absolute host path resolves inside root, for entries and for target."""
    sentinel = box.parent / "sentinel"
    (box / "etc").symlink_to(sentinel)
    inside = box / str(sentinel).lstrip("/")
    extract_into(io.BytesIO(make_tar(reg("etc/file", b"pwned"), reg("etc/new"))), str(box))
    assert (inside / "file").read_bytes() == b"pwned"
    assert (inside / "new").exists()

    (box / "up").symlink_to("../../../../../..")
    extract_into(io.BytesIO(make_tar(reg("x"))), str(box), "/up")
    assert (box / "x").exists()
    extract_into(io.BytesIO(make_tar(reg("y"))), str(box), "/etc")
    assert (inside / "y").exists()


def test_extract_into_target_symlink_with_missing_inside_path(box: Path) -> None:
    """A target that is a symlink to a host path missing in root is not found, not followed out."""
    (box / "etc").symlink_to("/etc")
    (box / "srv").symlink_to(box.parent / "sentinel")
    with pytest.raises(NotFound):
        extract_into(io.BytesIO(make_tar(reg(TOKEN))), str(box), "/srv")
    with pytest.raises(InvalidArgument):  # root/etc -> /etc is itself: a loop
        extract_into(io.BytesIO(make_tar(reg(TOKEN))), str(box), "/etc")


def test_extract_into_target_not_a_directory(tmp_path: Path) -> None:
    """Extracting onto a file is an invalid argument."""
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InvalidArgument, match="not a directory"):
        extract_into(io.BytesIO(make_tar(reg("a"))), str(tmp_path), "file")


def test_no_overwrite_dir_non_dir(tmp_path: Path) -> None:
    """With the option, a dir may not replace a non-dir or the reverse; without, it may."""
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "f").write_bytes(b"f")
    (root / "l").symlink_to("d")
    for entries in ([reg("d")], [dir_("f")], [dir_("l")], [sym("d", "x")]):
        with pytest.raises(InvalidArchive, match="cannot overwrite"):
            extract_into(io.BytesIO(make_tar(*entries)), str(root), no_overwrite_dir_non_dir=True)
    assert (root / "d").is_dir() and (root / "f").is_file() and (root / "l").is_symlink()
    extract_into(
        io.BytesIO(make_tar(dir_("d", mode=0o700), reg("f", b"new"))),
        str(root),
        no_overwrite_dir_non_dir=True,
    )
    assert (root / "f").read_bytes() == b"new"
    extract_into(io.BytesIO(make_tar(reg("d"), dir_("f"))), str(root))
    assert (root / "d").is_file() and (root / "f").is_dir()


def test_owner_overrides_tar_ids(tmp_path: Path) -> None:
    """With owner, every written entry gets that uid/gid, not the tar's."""
    root = tmp_path / "root"
    root.mkdir()
    data = make_tar(
        dir_("d", uid=1, gid=2),
        reg("d/f", uid=3, gid=4, mode=0o2755),
        sym("d/l", "f", uid=5, gid=6),
        entry("d/p", tarfile.FIFOTYPE, uid=7, gid=8),
    )
    extract_into(io.BytesIO(data), str(root), owner=(1234, 5678))
    for name in ("d", "d/f", "d/l", "d/p"):
        st = (root / name).lstat()
        assert (st.st_uid, st.st_gid) == (1234, 5678), name
    assert stat.S_IMODE((root / "d/f").stat().st_mode) == 0o2755
    extract_into(io.BytesIO(data), str(root))
    assert ((root / "d/f").stat().st_uid, (root / "d/f").stat().st_gid) == (3, 4)
