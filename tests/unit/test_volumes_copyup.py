"""Docker's copy-up: an image directory into a new, empty volume (owners, modes, scope)."""

import os
from pathlib import Path

from podapi.engine.volumes import _copy_up


def _rootfs(tmp_path: Path) -> tuple[Path, Path]:
    merged, data = tmp_path / "merged", tmp_path / "data"
    (merged / "srv" / "sub").mkdir(parents=True)
    (merged / "srv" / "file").write_text("content")
    (merged / "srv" / "sub" / "deep").write_text("deep")
    os.chown(merged / "srv", 1000, 1001)
    os.chmod(merged / "srv", 0o750)
    os.chown(merged / "srv" / "file", 2000, 2001)
    os.chmod(merged / "srv" / "file", 0o600)
    data.mkdir()
    return merged, data


def test_copies_files_owners_and_modes(tmp_path: Path) -> None:
    merged, data = _rootfs(tmp_path)
    _copy_up(str(merged), "/srv", str(data))
    assert (data / "file").read_text() == "content"
    assert (data / "sub" / "deep").read_text() == "deep"
    info = (data / "file").stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (2000, 2001, 0o600)
    root = data.stat()
    assert (root.st_uid, root.st_gid, root.st_mode & 0o7777) == (1000, 1001, 0o750)


def test_a_volume_with_content_is_left_alone(tmp_path: Path) -> None:
    merged, data = _rootfs(tmp_path)
    (data / "mine").write_text("mine")
    _copy_up(str(merged), "/srv", str(data))
    assert sorted(os.listdir(data)) == ["mine"]


def test_missing_or_non_directory_paths_copy_nothing(tmp_path: Path) -> None:
    merged, data = _rootfs(tmp_path)
    _copy_up(str(merged), "/nothing/here", str(data))
    _copy_up(str(merged), "/srv/file", str(data))
    assert os.listdir(data) == []


def test_symlinks_resolve_inside_the_rootfs(tmp_path: Path) -> None:
    """An image's ``/link -> /srv`` copies its own ``/srv``; ``..`` never leaves the rootfs."""
    merged, data = _rootfs(tmp_path)
    outside = tmp_path / "host-secret"
    outside.mkdir()
    (outside / "secret").write_text("host")
    (merged / "link").symlink_to("/srv")
    (merged / "escape").symlink_to("../../host-secret")
    _copy_up(str(merged), "/link", str(data))
    assert sorted(os.listdir(data)) == ["file", "sub"]
    other = tmp_path / "other"
    other.mkdir()
    _copy_up(str(merged), "/escape", str(other))
    assert not (other / "secret").exists()
