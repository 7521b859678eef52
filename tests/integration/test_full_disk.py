"""A full disk under ``--root`` during image load, commit and copy: a clean error, and
no half image or layer left behind (issue 18). ``--root`` is a small tmpfs of the test's."""

import io
import json
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.images import BuiltImage
from tests.integration.containers_support import IMAGE
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

Start = Callable[..., ServerProcess]
JSON = {"Content-Type": "application/json"}
#: Room for the database, the test image and a little more, not for a second copy.
TMPFS_SIZE = "12m"


@pytest.fixture
def small_root(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of :data:`TMPFS_SIZE` mounted for the test, unmounted after it."""
    root = tmp_path / "smallroot"
    root.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(root)], check=True
    )
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=True)


def _filler(size: int) -> bytes:
    """A tar holding one incompressible file of ``size`` bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("filler")
        info.size = size
        with open("/dev/urandom", "rb") as random:
            tar.addfile(info, io.BytesIO(random.read(size)))
    return buf.getvalue()


def _error(reply: object) -> dict[str, object]:
    body = json.loads(reply.body)  # type: ignore[attr-defined]
    assert set(body) == {"cause", "message", "response"}, body
    return body


def _images(server: ServerProcess) -> list[str]:
    return [i["Id"] for i in server.get_json("/v1.44/images/json?all=true")]


def _store(root: Path) -> set[str]:
    """Every path under ``root`` (what a failed operation must leave as it found)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _big_image_archive(size: int) -> bytes:
    return BuiltImage(layers=[_filler(size)]).docker_archive(["fz-big:latest"])


def test_full_disk_gives_clean_errors_and_leaves_nothing_half_made(
    start_server: Start, small_root: Path, busybox_archive: Path
) -> None:
    """Copy, load and commit on a full disk: an error body that names it, and the image
    store, layers, blobs and spool as they were before."""
    root = small_root / "root"
    server = start_server("--root", str(root))
    loaded = server.request("POST", "/v1.44/images/load", body=busybox_archive.read_bytes())
    assert b"Loaded image" in loaded.body, loaded.body
    images = _images(server)
    body = {"Image": IMAGE, "Cmd": ["dd", "if=/dev/urandom", "of=/big", "bs=1k", "count=3500"]}
    body["HostConfig"] = {"NetworkMode": "none"}
    created = server.request("POST", "/v1.44/containers/create", json.dumps(body).encode(), JSON)
    assert created.status == 201, created.body
    container = created.json()["Id"]
    before = _store(root)

    # Copy into the container: the upload itself does not fit.
    copied = server.request(
        "PUT",
        f"/v1.44/containers/{container}/archive?path=/tmp",
        _filler(16 * 1024 * 1024),
        {"Content-Type": "application/x-tar"},
        timeout=60,
    )
    assert copied.status == 500, copied.body
    assert _error(copied)["cause"] == "no space left on device"
    assert _store(root) == before

    # Load: the archive fits, its blob and layer do not.
    load = server.request("POST", "/v1.44/images/load", body=_big_image_archive(4 * 1024 * 1024))
    assert b"no space left on device" in load.body.lower(), load.body
    assert _images(server) == images
    assert _store(root) == before

    # Commit: the container's 3.5 MB file fits once, not as a blob and a layer too.
    started = server.request("POST", f"/v1.44/containers/{container}/start")
    assert started.status == 204, started.body
    waited = server.request("POST", f"/v1.44/containers/{container}/wait", timeout=60)
    assert waited.json()["StatusCode"] == 0, waited.body
    after_run = _store(root)
    committed = server.request("POST", f"/v1.44/commit?container={container}&repo=fz-commit")
    assert committed.status == 500, committed.body
    assert _error(committed)["cause"] == "no space left on device"
    assert _images(server) == images
    assert _store(root) == after_run
