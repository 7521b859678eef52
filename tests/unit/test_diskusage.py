"""Disk usage arithmetic: shared and unique image bytes from layer sets, kinds."""

from collections import Counter

import pytest

from podapi.engine.diskusage import check_kinds, image_usages
from podapi.engine.state.images import ImageRecord
from podapi.engine.systemprune import BuildCachePruned, SystemPruned
from podapi.errors import InvalidArgument

SIZES = {"base": 1000, "a": 30, "b": 50, "dup": 7}


def _image(image_id: str, *layers: str) -> ImageRecord:
    return ImageRecord(
        id=image_id,
        names=(),
        digests=(),
        manifest_digest="",
        manifest_media_type="",
        created=0,
        added=0,
        size=sum(SIZES[d] for d in layers),
        labels={},
        architecture="amd64",
        os="linux",
        parent="",
        layers=layers,
        names_history=(),
    )


def test_unique_bytes_are_the_layers_no_other_image_has() -> None:
    base, child, other = _image("1", "base"), _image("2", "base", "a"), _image("3", "base", "b")
    layers_size, usages = image_usages([base, child, other], SIZES, Counter({"2": 3}))
    assert layers_size == 1080  # each layer once
    by_id = {u.image.id: u for u in usages}
    assert (by_id["1"].shared, by_id["1"].unique) == (1000, 0)
    assert (by_id["2"].shared, by_id["2"].unique, by_id["2"].containers) == (1000, 30, 3)
    assert (by_id["3"].shared, by_id["3"].unique, by_id["3"].containers) == (1000, 50, 0)


def test_a_lone_image_owns_all_its_bytes_even_a_repeated_layer() -> None:
    image = _image("1", "base", "dup", "dup")
    layers_size, (usage,) = image_usages([image], SIZES, Counter())
    assert layers_size == 1007
    assert usage.unique == 1007
    assert usage.shared == 7  # the repeated layer counts once towards the unique bytes
    # Docker's reclaimable (LayersSize less the unique bytes in use) never goes negative.
    assert layers_size - usage.unique >= 0


def test_kinds() -> None:
    assert check_kinds([]) == {"container", "image", "volume", "build-cache"}
    assert check_kinds(["volume", "image"]) == {"volume", "image"}
    with pytest.raises(InvalidArgument, match="invalid type: layers"):
        check_kinds(["layers"])


def test_system_prune_reclaimed_sums_every_kind() -> None:
    report = SystemPruned(
        containers=[("c", 5)],
        images=[("i", 100), ("j", 7)],
        networks=["n"],
        volumes=[("v", 11)],
        build_cache=BuildCachePruned(["x"], 2),
    )
    assert report.reclaimed == 125
