"""Local image lookup under each short-name policy, and the image/meta rows it relies on."""

import sqlite3
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from podapi.engine.shortnames import ShortNames
from podapi.engine.state import images
from podapi.engine.state.database import meta_value, migrate
from podapi.engine.state.images import NewImage, NewLayer
from podapi.errors import Conflict
from podapi.storage.layers import GZIP_MEDIA

TAR_MEDIA = "application/vnd.oci.image.layer.v1.tar"


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(tmp_path / "podapi.db", isolation_level=None)
    connection.row_factory = sqlite3.Row  # as the state database sets it
    connection.execute("PRAGMA foreign_keys=ON")
    migrate(connection)
    yield connection
    connection.close()


def _store(conn: sqlite3.Connection, char: str, *names: str) -> str:
    layer = NewLayer("sha256:" + char * 64, 10, "sha256:" + char * 63 + "0", GZIP_MEDIA, 5)
    new = NewImage(
        id=char * 64,
        manifest_digest="sha256:" + char * 63 + "1",
        manifest_media_type="application/vnd.oci.image.manifest.v1+json",
        created=0,
        size=10,
        labels={},
        architecture="amd64",
        os="linux",
        layers=(layer,),
        names=names,
    )
    return images.insert_image(conn, new, 0).image.id


def _lookup(conn: sqlite3.Connection, text: str, policy: ShortNames) -> tuple[str, str] | None:
    return images.find_image(conn, text, [*policy.local_domains, "quay.io"])


def _find(conn: sqlite3.Connection, text: str, policy: ShortNames) -> str | None:
    found = _lookup(conn, text, policy)
    return None if found is None else found[0]


def test_docker_policy_prefers_docker_hub_and_podman_localhost(conn: sqlite3.Connection) -> None:
    """A short name both registries hold is Docker Hub's for Docker, localhost's for Podman."""
    hub = _store(conn, "a", "docker.io/library/app:1")
    local = _store(conn, "b", "localhost/app:1")
    assert _find(conn, "app:1", ShortNames.DOCKER) == hub
    assert _find(conn, "app:1", ShortNames.PODMAN) == local


def test_search_registries_then_unique_suffix(conn: sqlite3.Connection) -> None:
    """Then the search registries; then one stored name ending in ``/name:tag``."""
    quay = _store(conn, "c", "quay.io/tool:2")
    other = _store(conn, "d", "example.com/team/only:3")
    for policy in ShortNames:
        assert _find(conn, "tool:2", policy) == quay
        assert _find(conn, "team/only:3", policy) == other
        assert _find(conn, "nothing", policy) is None


def test_ambiguous_suffix_is_a_conflict(conn: sqlite3.Connection) -> None:
    """Two stored names ending in ``/name:tag`` make the short name ambiguous."""
    _store(conn, "e", "one.example/x:1")
    _store(conn, "f", "two.example/x:1")
    with pytest.raises(Conflict):
        _find(conn, "x:1", ShortNames.PODMAN)


def test_ids_and_prefixes_resolve_under_both_policies(conn: sqlite3.Connection) -> None:
    """Full IDs (with or without ``sha256:``) and prefixes do not depend on the policy."""
    image_id = _store(conn, "a", "docker.io/library/app:1")
    for policy in ShortNames:
        assert _find(conn, "sha256:" + image_id, policy) == image_id
        assert _find(conn, image_id[:5], policy) == image_id
    assert images.count_images(conn) == 1


def test_the_name_found_by_is_the_resolved_one(conn: sqlite3.Connection) -> None:
    """Podman's RootfsImageName: the full name the text matched; for an ID, the first name."""
    hub = _store(conn, "a", "docker.io/library/app:latest", "docker.io/library/app:2")
    other = _store(conn, "d", "example.com/team/only:3")
    assert _lookup(conn, "app", ShortNames.PODMAN) == (hub, "docker.io/library/app:latest")
    assert _lookup(conn, "app:2", ShortNames.DOCKER) == (hub, "docker.io/library/app:2")
    assert _lookup(conn, "only:3", ShortNames.PODMAN) == (other, "example.com/team/only:3")
    assert _lookup(conn, hub[:6], ShortNames.PODMAN) == (hub, "docker.io/library/app:latest")
    bare = _store(conn, "b")
    assert _lookup(conn, bare, ShortNames.PODMAN) == (bare, "")


def test_best_blob_prefers_an_uncompressed_one(conn: sqlite3.Connection) -> None:
    """A generated manifest names the uncompressed blob of a layer when there is one."""
    _store(conn, "a")
    diff_id = "sha256:" + "a" * 64
    assert images.best_blob(conn, diff_id)[1] == GZIP_MEDIA
    images.add_layer_blob(conn, NewLayer(diff_id, 10, "sha256:" + "9" * 64, TAR_MEDIA, 10))
    assert images.best_blob(conn, diff_id) == ("sha256:" + "9" * 64, TAR_MEDIA, 10)


def test_meta_value_is_made_once(conn: sqlite3.Connection) -> None:
    """The first read stores the made value; later reads return it."""
    first = meta_value(conn, "server_id", partial(str, "one"))
    again = meta_value(conn, "server_id", partial(str, "two"))
    assert (first, again) == ("one", "one")
