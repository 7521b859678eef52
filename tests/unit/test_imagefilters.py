"""The ``reference`` image filter: libimage's name forms and Docker's familiar names."""

import pytest

from podapi.engine import imagefilters
from podapi.engine.state.images import ImageRecord


def image(*names: str) -> ImageRecord:
    return ImageRecord(
        id="a" * 64,
        names=names,
        digests=(),
        manifest_digest="",
        manifest_media_type="",
        created=0,
        added=0,
        size=0,
        labels={},
        architecture="amd64",
        os="linux",
        parent="",
        layers=(),
        names_history=(),
    )


def matches(pattern: str, record: ImageRecord) -> bool:
    return imagefilters.build({"reference": [pattern]}, {}, 0)(record)


@pytest.mark.parametrize(
    "pattern",
    [
        "test1",  # the last component (Podman's suite: podman build -t test1)
        "test1:latest",
        "localhost/test1",
        "localhost/test1:latest",
        "test*",
    ],
)
def test_local_image_matches_its_name_forms(pattern: str) -> None:
    """``localhost/test1:latest`` matches as libimage's filterReferences lets it."""
    assert matches(pattern, image("localhost/test1:latest"))


@pytest.mark.parametrize(
    "pattern", ["busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest"]
)
def test_docker_hub_image_matches_familiar_and_full_forms(pattern: str) -> None:
    """Docker's familiar name and the fully qualified one both match."""
    assert matches(pattern, image("docker.io/library/busybox:latest"))


@pytest.mark.parametrize("pattern", ["test", "test1:v2", "other/test1", "quay.io/test1"])
def test_other_names_do_not_match(pattern: str) -> None:
    """A different name, tag or path is no match."""
    assert not matches(pattern, image("localhost/test1:latest"))


def test_digest_names_match_without_the_digest() -> None:
    """A name by digest matches its repository."""
    record = image("quay.io/libpod/alpine@sha256:" + "b" * 64)
    assert matches("alpine", record)
    assert matches("libpod/alpine", record)
