"""Search filters and push options as Podman decodes them, and manifest conversion for a push."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podapi.engine import searchfilters
from podapi.engine.push import check_push_compression, image_manifest, push_manifest_type
from podapi.engine.searchfilters import SearchFilter
from podapi.errors import InvalidArgument
from podapi.storage.imageformats import DOCKER_CONFIG, OCI_CONFIG
from podapi.storage.layers import DOCKER_GZIP_MEDIA, GZIP_MEDIA
from podapi.storage.registry import DOCKER_MANIFEST, OCI_MANIFEST, Descriptor

CONFIG = Descriptor(DOCKER_CONFIG, "sha256:" + "c" * 64, 1234)
LAYERS = [
    Descriptor(DOCKER_GZIP_MEDIA, "sha256:" + "a" * 64, 100),
    Descriptor(GZIP_MEDIA, "sha256:" + "b" * 64, 200),
]


def test_no_filters_select_everything() -> None:
    keep = searchfilters.parse({})
    assert keep == SearchFilter()
    assert keep.matches(0, False, False)
    assert keep.matches(5, True, True)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"stars": ["3"]}, SearchFilter(stars=3)),
        ({"stars": ["+3", "7"]}, SearchFilter(stars=3)),  # the first value counts
        ({"is-official": ["true"]}, SearchFilter(official=True)),
        ({"is-official": ["false"]}, SearchFilter(official=False)),
        ({"is-official": ["yes"]}, SearchFilter(official=True)),  # only "false" is false
        ({"is-official": []}, SearchFilter(official=True)),
        ({"is-automated": ["false"]}, SearchFilter(automated=False)),
        ({"is-automated": ["FALSE"]}, SearchFilter(automated=True)),
    ],
)
def test_filters_decode_as_libimage_does(
    filters: dict[str, list[str]], expected: SearchFilter
) -> None:
    assert searchfilters.parse(filters) == expected


def test_filters_select_by_stars_official_and_automated() -> None:
    assert not SearchFilter(stars=1).matches(0, False, False)
    assert SearchFilter(stars=1).matches(1, False, False)
    assert SearchFilter(official=False).matches(0, False, True)
    assert not SearchFilter(official=True).matches(0, False, False)
    assert not SearchFilter(automated=False).matches(0, False, True)


@pytest.mark.parametrize("value", ["", "many", "1.5", " 2", "0x10", "1_000"])
def test_stars_must_be_a_go_integer(value: str) -> None:
    with pytest.raises(InvalidArgument, match="incorrect value type for stars filter"):
        searchfilters.parse({"stars": [value]})


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_any_integer_is_a_stars_value(stars: int) -> None:
    assert searchfilters.parse({"stars": [str(stars)]}).stars == stars


@given(
    st.text(min_size=1).filter(lambda k: k not in ("stars", "is-official", "is-automated")),
    st.text(),
)
def test_any_other_key_is_an_invalid_filter(key: str, value: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid filter type"):
        searchfilters.parse({key: [value]})


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [("", None), ("oci", OCI_MANIFEST), ("v2s2", DOCKER_MANIFEST), ("docker", DOCKER_MANIFEST)],
)
def test_push_formats(fmt: str, media_type: str | None) -> None:
    assert push_manifest_type(fmt) == media_type


@pytest.mark.parametrize(("fmt", "words"), [("v2s1", "not supported"), ("v3", "unknown format")])
def test_other_push_formats_are_refused(fmt: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        push_manifest_type(fmt)


def test_only_gzip_compression_is_pushed() -> None:
    check_push_compression("")
    check_push_compression("gzip")
    for name in ("zstd", "zstd:chunked"):
        with pytest.raises(InvalidArgument, match=f"compression format '{name}' is not supported"):
            check_push_compression(name)
    with pytest.raises(InvalidArgument, match="unsupported compression format 'lz4'"):
        check_push_compression("lz4")


@pytest.mark.parametrize(
    ("media_type", "config_type", "layer_type"),
    [(OCI_MANIFEST, OCI_CONFIG, GZIP_MEDIA), (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_GZIP_MEDIA)],
)
def test_a_manifest_of_either_family_names_the_same_blobs(
    media_type: str, config_type: str, layer_type: str
) -> None:
    """Converting OCI <-> Docker schema 2 changes media types, never digests or sizes."""
    document = json.loads(image_manifest(media_type, CONFIG, LAYERS))
    assert document["schemaVersion"] == 2
    assert document["mediaType"] == media_type
    assert document["config"] == {
        "mediaType": config_type,
        "digest": CONFIG.digest,
        "size": CONFIG.size,
    }
    assert document["layers"] == [
        {"mediaType": layer_type, "digest": d.digest, "size": d.size} for d in LAYERS
    ]
