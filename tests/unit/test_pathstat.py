"""Docker's view of a container path: cleaning, stat, Go file modes, what gets archived,
and the stat header both Docker and Podman clients can decode."""

import base64
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podapi.errors import InvalidArgument
from podapi.http.both.containerfiles import encode_path_stat
from podapi.storage.pathstat import (
    GO_MODE_CHAR_DEVICE,
    GO_MODE_DEVICE,
    GO_MODE_DIR,
    GO_MODE_NAMED_PIPE,
    GO_MODE_SETUID,
    GO_MODE_SOCKET,
    GO_MODE_STICKY,
    GO_MODE_SYMLINK,
    ContainerPath,
    NoSuchPath,
    PathStat,
    archive_path,
    go_file_mode,
    stat_path,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A small container rootfs with links that point in, up and out."""
    top = tmp_path / "rootfs"
    (top / "etc").mkdir(parents=True)
    (top / "etc" / "passwd").write_text("inside the container\n")
    (top / "tmp" / "x").mkdir(parents=True)
    (top / "tmp" / "x" / "f").write_text("f")
    (top / "etclink").symlink_to("/etc")
    (top / "relative").symlink_to("etc/passwd")
    (top / "up").symlink_to("../../../../etc/passwd")  # above the root: stays in it
    (top / "escape").symlink_to("/")
    (top / "dangling").symlink_to("/no/such/target")
    (top / "loop").symlink_to("loop")
    return top


@pytest.mark.parametrize(
    ("path", "absolute", "asserts_dir", "base"),
    [
        ("/", "/", True, "/"),
        ("/.", "/.", True, "."),
        (".", "/.", True, "."),
        ("etc", "/etc", False, "etc"),
        ("/etc/", "/etc/", True, "etc"),
        ("/etc/.", "/etc/.", True, "."),
        ("/etc/./", "/etc/./", True, "."),
        ("/a/../etc", "/etc", False, "etc"),
        ("//etc//passwd", "/etc/passwd", False, "passwd"),
        ("/..", "/", True, "/"),
    ],
)
def test_paths_are_cleaned_like_docker(
    path: str, absolute: str, asserts_dir: bool, base: str
) -> None:
    parsed = ContainerPath.parse(path)
    assert (parsed.absolute, parsed.asserts_dir, parsed.base) == (absolute, asserts_dir, base)


@pytest.mark.parametrize("path", ["", "/etc/\0passwd"])
def test_empty_or_nul_paths_are_refused(path: str) -> None:
    with pytest.raises(InvalidArgument):
        ContainerPath.parse(path)


def test_go_file_modes() -> None:
    """The bits Go's ``os.FileMode`` uses (Docker's API doc: a 0700 dir is 2147484096)."""
    assert go_file_mode(stat.S_IFDIR | 0o700) == 2147484096
    assert go_file_mode(stat.S_IFREG | 0o644) == 0o644
    assert go_file_mode(stat.S_IFLNK | 0o777) == GO_MODE_SYMLINK | 0o777
    assert go_file_mode(stat.S_IFREG | stat.S_ISUID | 0o755) == GO_MODE_SETUID | 0o755
    assert go_file_mode(stat.S_IFDIR | stat.S_ISVTX | 0o777) == GO_MODE_DIR | GO_MODE_STICKY | 0o777
    assert go_file_mode(stat.S_IFCHR | 0o666) == GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE | 0o666
    assert go_file_mode(stat.S_IFBLK | 0o660) == GO_MODE_DEVICE | 0o660
    assert go_file_mode(stat.S_IFIFO | 0o600) == GO_MODE_NAMED_PIPE | 0o600
    assert go_file_mode(stat.S_IFSOCK | 0o755) == GO_MODE_SOCKET | 0o755


def test_stat_of_files_and_directories(root: Path) -> None:
    passwd = stat_path(str(root), "/etc/passwd")
    assert passwd.name == "passwd"
    assert passwd.size == len("inside the container\n")
    assert passwd.mode == (root / "etc" / "passwd").stat().st_mode & 0o777
    assert passwd.mtime_ns == (root / "etc" / "passwd").stat().st_mtime_ns
    assert (passwd.link_target, passwd.is_dir) == ("/etc/passwd", False)
    top = stat_path(str(root), "/")
    assert (top.name, top.is_dir, top.link_target) == ("/", True, "/")
    assert top.mode & GO_MODE_DIR


def test_symlinks_are_described_not_followed_and_resolved_inside_the_root(root: Path) -> None:
    """The link's own mode; its target resolved in the root, whatever it says."""
    link = stat_path(str(root), "/etclink")
    assert link.mode & GO_MODE_SYMLINK
    assert (link.link_target, link.is_dir) == ("/etc", True)
    assert stat_path(str(root), "/relative").link_target == "/etc/passwd"
    assert stat_path(str(root), "/up").link_target == "/etc/passwd"
    assert stat_path(str(root), "/escape").link_target == "/"
    dangling = stat_path(str(root), "/dangling")
    assert (dangling.link_target, dangling.is_dir) == ("/no/such/target", False)
    # A trailing slash follows the link: then it is the directory it leads to.
    followed = stat_path(str(root), "/etclink/")
    assert followed.mode & GO_MODE_DIR and not followed.mode & GO_MODE_SYMLINK
    # Intermediate links resolve inside the root: "/" is the container's root.
    through = stat_path(str(root), "/escape/etc/passwd")
    assert through.size == len("inside the container\n")


@pytest.mark.parametrize(
    "path", ["/absent", "/etc/absent/x", "/etc/passwd/x", "/etc/passwd/", "/loop/x", "/dangling/"]
)
def test_missing_paths_are_404(root: Path, path: str) -> None:
    with pytest.raises(NoSuchPath) as raised:
        stat_path(str(root), path)
    assert raised.value.cause == "no such file or directory"


def names_in(found: tuple[PathStat, object]) -> list[str]:
    _, stream = found
    data = b"".join(stream)  # type: ignore[call-overload]
    stream.close()  # type: ignore[attr-defined]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.name + ("/" if m.isdir() else "") for m in tar]


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/tmp/x", ["x/", "x/f"]),
        ("/tmp/x/", ["x/", "x/f"]),
        ("/tmp/x/.", ["./", "./f"]),
        ("/tmp/x/f", ["f"]),
        ("/etclink", ["etclink"]),  # the link itself
        ("/etclink/", ["etclink/", "etclink/passwd"]),  # what it leads to, under its name
        ("/etclink/.", ["./", "./passwd"]),
    ],
)
def test_what_gets_archived(root: Path, path: str, names: list[str]) -> None:
    assert names_in(archive_path(str(root), path)) == names


def test_the_root_is_archived_with_absolute_names(root: Path) -> None:
    """Docker rebases ``.`` onto ``/``: ``/``, ``/etc/``, ``/etc/passwd``..."""
    names = names_in(archive_path(str(root), "/"))
    assert names[:3] == ["/", "/dangling", "/escape"]
    assert "/etc/passwd" in names


def test_an_archive_through_a_link_to_slash_reads_the_containers_files(root: Path) -> None:
    found, stream = archive_path(str(root), "/escape/etc/passwd")
    data = b"".join(stream)
    stream.close()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("passwd")
        assert member is not None and member.read() == b"inside the container\n"
    assert found.name == "passwd"


def decode_both_ways(value: str) -> tuple[object, object]:
    """As Docker's clients (standard alphabet) and Podman's (URL-safe) decode it, strictly."""
    standard = base64.b64decode(value, validate=True)
    url_safe = base64.b64decode(value, altchars=b"-_", validate=True)
    return json.loads(standard), json.loads(url_safe)


def test_stat_header_shape() -> None:
    found = PathStat("a", 3, 0o644, 1_700_000_000_500_000_000, "/x/a", False)
    docker, podman = decode_both_ways(encode_path_stat(found))
    assert (
        docker
        == podman
        == {
            "name": "a",
            "size": 3,
            "mode": 0o644,
            "mtime": "2023-11-14T22:13:20.5Z",
            "isDir": False,
            "linkTarget": "/x/a",
        }
    )


@given(st.text(), st.text(), st.integers(0, 2**32 - 1))
def test_stat_header_reads_the_same_in_both_base64_alphabets(
    name: str, target: str, mode: int
) -> None:
    found = PathStat(name, 1, mode, 1, target, True)
    value = encode_path_stat(found)
    assert not set(value) & set("+/-_")
    docker, podman = decode_both_ways(value)
    assert docker == podman
    assert isinstance(docker, dict)
    assert (docker["name"], docker["linkTarget"], docker["mode"]) == (name, target, mode)


def test_unusual_names_in_the_header(tmp_path: Path) -> None:
    """``~``, ``?`` and ``>`` would give ``+`` or ``/`` in base64 if left as they are."""
    root = tmp_path / "r"
    root.mkdir()
    name = "~?>~?>é"
    (root / name).write_text("x")
    docker, _ = decode_both_ways(encode_path_stat(stat_path(str(root), "/" + name)))
    assert isinstance(docker, dict) and docker["name"] == name
    assert os.path.exists(root / name)
