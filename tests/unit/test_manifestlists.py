"""Manifest list values: names, annotations, the index type a push uses, inspect's shape."""

import json

import pytest

from podapi.engine.manifestpush import index_document, index_type
from podapi.engine.manifests import (
    Annotation,
    docker_list,
    list_name,
    parse_annotations,
)
from podapi.engine.state.manifests import ManifestEntry, ManifestListRecord
from podapi.errors import InvalidArgument
from podapi.storage.imageformats import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def entry(digest: str = D1, media_type: str = DOCKER_MANIFEST, **platform: str) -> ManifestEntry:
    return ManifestEntry(
        digest, media_type, 10, platform or {"architecture": "amd64", "os": "linux"}
    )


def test_list_names_are_normalised_as_libimage_does() -> None:
    assert list_name("mylist") == "localhost/mylist:latest"
    assert list_name("quay.io/a/b:2") == "quay.io/a/b:2"
    with pytest.raises(InvalidArgument):
        list_name("mylist@" + D1)
    with pytest.raises(InvalidArgument):
        list_name("Not Valid")


def test_annotation_sets_only_what_is_given() -> None:
    base = ManifestEntry(
        D1, DOCKER_MANIFEST, 10, {"architecture": "amd64", "os": "linux"}, {"x": "1"}
    )
    changed = Annotation(variant="v2", os_features=("f",), annotations={"y": "2"}).apply(base)
    assert changed.platform == {
        "architecture": "amd64",
        "os": "linux",
        "variant": "v2",
        "os.features": ["f"],
    }
    assert changed.annotations == {"x": "1", "y": "2"}
    assert Annotation().apply(base) == base


def test_parse_annotations() -> None:
    assert parse_annotations(["a=b", "c=d=e"]) == {"a": "b", "c": "d=e"}
    with pytest.raises(InvalidArgument, match="no value given for annotation 'k'"):
        parse_annotations(["k"])


def test_index_type_follows_format_then_entries() -> None:
    docker, oci = entry(), entry(D2, OCI_MANIFEST)
    assert index_type([docker], "") == DOCKER_LIST
    assert index_type([docker, oci], "") == OCI_INDEX
    assert index_type([docker], "oci") == OCI_INDEX
    assert index_type([oci], "v2s2") == DOCKER_LIST
    assert index_type([], "") == DOCKER_LIST


def test_documents() -> None:
    annotated = ManifestEntry(
        D2, OCI_MANIFEST, 5, {"architecture": "arm64", "os": "linux", "variant": "v8"}, {"k": "v"}
    )
    record = ManifestListRecord("i" * 64, "localhost/l:latest", 0, (entry(), annotated))
    shown = docker_list(record)
    assert shown["mediaType"] == DOCKER_LIST
    assert shown["manifests"][0] == {
        "mediaType": DOCKER_MANIFEST,
        "size": 10,
        "digest": D1,
        "platform": {"architecture": "amd64", "os": "linux"},
    }
    assert shown["manifests"][1]["annotations"] == {"k": "v"}
    oci = json.loads(index_document(record.entries, OCI_INDEX))
    assert oci["mediaType"] == OCI_INDEX and oci["manifests"][1]["annotations"] == {"k": "v"}
    docker = json.loads(index_document(record.entries, DOCKER_LIST))
    assert "annotations" not in docker["manifests"][1]
