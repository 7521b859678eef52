"""Where containers' and pods' cgroups go (default, given, a pod's) and what is removed after."""

import os
from pathlib import Path

import pytest

from podapi.engine.cgroupplace import (
    check_parent,
    container_cgroup,
    container_leftovers,
    pod_cgroup,
    pod_leftovers,
    remove_empty,
    shown,
)
from podapi.engine.containerspec import ContainerSpec, RunConfig
from podapi.engine.podspec import PodSpec
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.state.pods import PodRecord
from podapi.errors import InvalidArgument
from podapi.oci.cgroups import own_cgroups

CID, POD = "c" * 64, "p" * 64


def _container(cgroup_parent: str = "", pod: str = "") -> ContainerRecord:
    run = RunConfig("sh", (), (), (), (), "/", "", "h", {}, "SIGTERM", 10, (), None)
    spec = ContainerSpec(image="busybox", pod=pod, cgroup_parent=cgroup_parent)
    return ContainerRecord(
        id=CID,
        name="c",
        image_id="i",
        image_name="busybox",
        created=1,
        spec=spec,
        run=run,
        state="created",
    )


@pytest.mark.parametrize(
    ("given", "relative"),
    [
        ("", ""),
        ("/", ""),
        ("/custom", "custom"),
        ("a//b/./c/", "a/b/c"),
        ("x.slice/y", "x.slice/y"),
    ],
)
def test_a_given_parent_is_made_relative(given: str, relative: str) -> None:
    """Leading slashes, empty and ``.`` components go: the parent nests under our cgroup."""
    assert check_parent(given) == relative


@pytest.mark.parametrize("given", ["../escape", "a/../../b", "machine.slice", "/a/b.slice"])
def test_a_parent_leaving_our_cgroup_or_a_slice_is_refused(given: str) -> None:
    """``..`` would leave the server's cgroup; a systemd slice is refused as Podman's cgroupfs."""
    with pytest.raises(InvalidArgument):
        check_parent(given)


def test_where_a_container_cgroup_goes() -> None:
    """The default parent, the given one, or the pod's cgroup (set at create)."""
    pod = PodRecord(id=POD, name="web", created=1, spec=PodSpec())
    assert container_cgroup(_container()) == f"podapi/{CID}"
    assert container_cgroup(_container("custom/sub")) == f"custom/sub/{CID}"
    assert pod_cgroup(pod) == f"podapi/{POD}"
    assert pod_cgroup(PodRecord(POD, "w", 1, PodSpec(cgroup_parent="mine"))) == f"mine/{POD}"
    member = _container(pod_cgroup(pod), pod=POD)
    assert container_cgroup(member) == f"podapi/{POD}/{CID}"
    assert shown(container_cgroup(member)) == f"/podapi/{POD}/{CID}"
    assert shown("") == ""


def test_leftovers_stop_at_the_pod_cgroup() -> None:
    """A container's parents go with it, except its pod's cgroup, which goes with the pod."""
    pod = PodRecord(id=POD, name="web", created=1, spec=PodSpec())
    assert container_leftovers(_container()) == [f"podapi/{CID}", "podapi"]
    assert container_leftovers(_container("a/b")) == [f"a/b/{CID}", "a/b", "a"]
    assert container_leftovers(_container(pod_cgroup(pod), pod=POD)) == [f"podapi/{POD}/{CID}"]
    # A parent the client gave wins over the pod's, and goes with the container.
    assert container_leftovers(_container("mine", pod=POD)) == [f"mine/{CID}", "mine"]
    assert pod_leftovers(pod) == [f"podapi/{POD}", "podapi"]


def test_remove_empty_keeps_cgroups_in_use(tmp_path: Path) -> None:
    """Only empty cgroups are removed, so a sibling's parent stays."""
    # The cgroup2 tree at tmp_path (no ``unified`` dir there): our own cgroup below it.
    own = tmp_path / own_cgroups()[""].lstrip("/")
    pod = PodRecord(id=POD, name="web", created=1, spec=PodSpec())
    member = _container(pod_cgroup(pod), pod=POD)
    other = "d" * 64
    for relative in (container_cgroup(member), f"podapi/{other}"):
        os.makedirs(own / relative)
    remove_empty(container_leftovers(member), str(tmp_path))
    assert sorted(p.name for p in (own / "podapi").iterdir()) == [other, POD]
    remove_empty(pod_leftovers(pod), str(tmp_path))
    assert [p.name for p in (own / "podapi").iterdir()] == [other]
    os.rmdir(own / "podapi" / other)
    remove_empty(pod_leftovers(pod), str(tmp_path))
    assert not (own / "podapi").exists()
