"""One pass over an image archive: layers staged as they stream past, bound by name later."""

import io
import os
import tarfile
from pathlib import Path

import pytest

from podapi.errors import InvalidArgument
from podapi.storage import archivereceive
from podapi.storage.blobs import BlobStore
from podapi.storage.imageformats import InvalidImageArchive, read_archive
from podapi.storage.layers import LayerStore
from podapi.storage.tarstream import bytes_chunks
from tests.fixtures.images import BuiltImage, layer_tar


@pytest.fixture
def store(tmp_path: Path) -> LayerStore:
    blobs = BlobStore(str(tmp_path))
    blobs.create()
    layers = LayerStore(str(tmp_path), blobs)
    layers.create()
    return layers


def leftovers(root: Path) -> list[str]:
    return sorted(os.listdir(root / "layers-staging")) + sorted(os.listdir(root / "blobs/staging"))


def archive(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


def test_layers_before_the_manifest_are_staged_and_bound_by_name(
    store: LayerStore, tmp_path: Path
) -> None:
    image = BuiltImage(layers=[layer_tar({"a": b"1" * 5000}), layer_tar({"b": b"2"})])
    received = archivereceive.receive(bytes_chunks(image.docker_archive(["x:1"])), store)
    [found] = read_archive(received)  # manifest.json came last
    assert found.names == ("docker.io/library/x:1",)
    staged = [received.take_layer(name, store) for name in found.layers]
    assert [s.diff_id for s in staged] == image.diff_ids
    ingested = staged[0].commit()
    assert ingested.blob.digest == image.diff_ids[0]
    assert (Path(ingested.staging_dir) / "a").read_bytes() == b"1" * 5000
    received.discard()
    assert leftovers(tmp_path) == [os.path.basename(ingested.staging_dir)]  # committed: kept


def test_a_linked_member_names_its_target(store: LayerStore) -> None:
    """Docker 25's docker save links ``<id>/layer.tar`` to ``blobs/sha256/<hex>``."""
    layer = layer_tar({"a": b"x"})
    link = tarfile.TarInfo("abc/layer.tar")
    link.type, link.linkname = tarfile.SYMTYPE, "../blobs/sha256/0123"
    received = archivereceive.receive(
        bytes_chunks(archive([("blobs/sha256/0123", layer), link])), store
    )
    assert received.take_layer("abc/layer.tar", store) is received.layers["blobs/sha256/0123"]
    received.discard()


def test_small_layers_stay_in_memory_until_named(store: LayerStore, tmp_path: Path) -> None:
    received = archivereceive.receive(bytes_chunks(archive([("empty.tar", b"")])), store)
    assert leftovers(tmp_path) == []
    staged = received.take_layer("empty.tar", store)
    assert staged.size == 0
    received.discard()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "members",
    [
        [("good.tar", layer_tar({"a": b"x" * 3000})), ("evil.tar", layer_tar({"../../x": b"x"}))],
        [("good.tar", layer_tar({"a": b"x" * 3000})), ("cut.tar", layer_tar({"b": b"y" * 9000}))],
    ],
)
def test_a_failed_receive_leaves_nothing_staged(
    store: LayerStore, tmp_path: Path, members: list[tuple[str, bytes]]
) -> None:
    data = archive(members)
    if members[-1][0] == "cut.tar":
        data = data[: data.index(b"y" * 100) + 4000]  # inside the last layer
    with pytest.raises(InvalidArgument):
        archivereceive.receive(bytes_chunks(data), store)
    assert leftovers(tmp_path) == []


def test_metadata_kept_in_memory_is_bounded(
    store: LayerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archivereceive, "SMALL_TOTAL", 3000)
    members = [(f"m{i}.json", b"{}".ljust(1000)) for i in range(5)]
    received = archivereceive.receive(bytes_chunks(archive(members)), store)
    assert sorted(received.files) == ["m0.json", "m1.json", "m2.json"]
    with pytest.raises(InvalidImageArchive, match="not a small regular file"):
        received.small("m4.json")
    with pytest.raises(InvalidImageArchive, match="has no"):
        received.small("other.json")
