"""Event names per stream and the ``/events`` filter matrix."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podapi.engine.eventfilters import (
    FILTER_KEYS,
    EventFilter,
    docker_action,
    podman_action,
)
from podapi.engine.events import DETAIL, Event
from podapi.errors import InvalidArgument

CID = "c" * 64
IID = "1" * 64
NID = "n" * 64
PID = "p" * 64
SID = "s" * 64


def event(type: str, action: str, actor: str = CID, **attributes: str) -> Event:
    return Event(type=type, action=action, actor_id=actor, time_nano=1, attributes=attributes)


def container(action: str, **attributes: str) -> Event:
    return event(
        "container", action, CID, name="web", image="docker.io/library/busybox:1.36", **attributes
    )


#: One event of each kind: (event, Docker's name, Podman's name or None if not shown).
EVENTS = [
    (container("create"), "create", "create"),
    (container("died", containerExitCode="3"), "die", "died"),
    (container("remove"), "destroy", "remove"),
    (container("oom"), "oom", None),
    (container("exec_create", **{DETAIL: "ls -l"}), "exec_create: ls -l", None),
    (container("exec", **{DETAIL: "ls -l"}), "exec_start: ls -l", "exec"),
    (container("exec_died", exitCode="0"), "exec_die", "exec_died"),
    (
        container("health_status", health_status="healthy"),
        "health_status: healthy",
        "health_status",
    ),
    (container("resize", height="24", width="80"), "resize", None),
    (container("archive-path", path="/etc"), "archive-path", None),
    (container("extract-to-dir", path="/tmp"), "extract-to-dir", None),
    (container("export"), "export", "export"),
    (container("update"), "update", "update"),
    (container("attach"), "attach", "attach"),
    (event("image", "remove", IID, name="busybox:latest"), "delete", "remove"),
    (event("image", "load", IID, name="busybox:latest"), "load", "loadfromarchive"),
    (event("image", "pull", IID, name="busybox:latest"), "pull", "pull"),
    (event("volume", "remove", "data", name="data"), "destroy", "remove"),
    (event("volume", "create", "data", name="data"), "create", "create"),
    (event("network", "remove", NID, name="front"), "destroy", "remove"),
    (event("network", "connect", NID, name="front", container=CID), "connect", "connect"),
    (event("pod", "remove", PID, name="pod1"), "remove", "remove"),
    (event("secret", "create", SID, name="token"), "create", "create"),
    (event("system", "refresh", ""), "refresh", "refresh"),
]


@pytest.mark.parametrize(("e", "docker", "podman"), EVENTS)
def test_each_stream_names_each_event(e: Event, docker: str, podman: str | None) -> None:
    assert docker_action(e) == docker
    assert podman_action(e) == podman


def test_old_podman_clients_do_not_get_what_they_cannot_decode() -> None:
    """Podman 4.3.1 has no ``secret`` type and no ``update`` status: it would fail on them."""
    secret = event("secret", "create", SID, name="token")
    assert podman_action(secret, (4, 3, 1)) is None
    assert podman_action(secret, (5, 5, 0)) == "create"
    assert podman_action(container("update"), (4, 3, 1)) is None
    assert podman_action(container("update"), (5, 0, 0)) == "update"
    assert podman_action(container("died"), (4, 3, 1)) == "died"


def compat(filters: dict[str, list[str]]) -> EventFilter:
    return EventFilter.parse(filters, docker_action, podman_action, labels_all=True)


def libpod(filters: dict[str, list[str]]) -> EventFilter:
    return EventFilter.parse(filters, podman_action, docker_action)


@pytest.mark.parametrize(("e", "docker", "podman"), EVENTS)
def test_event_filter_takes_the_name_the_stream_shows(
    e: Event, docker: str, podman: str | None
) -> None:
    assert compat({"event": [docker]}).matches(e)
    if podman is not None:
        assert libpod({"event": [podman]}).matches(e)
        # The other tree's name is accepted too (clients crossing trees, #16857).
        assert compat({"event": [podman]}).matches(e)
        assert libpod({"event": [docker.partition(":")[0]]}).matches(e)
    assert not compat({"event": ["start"]}).matches(e)
    assert not libpod({"event": ["start"]}).matches(e)


def test_docker_fuzzy_action_prefixes() -> None:
    """``health_status`` / ``exec_create`` / ``exec_start`` match Docker's suffixed names."""
    assert compat({"event": ["health_status"]}).matches(
        container("health_status", health_status="unhealthy")
    )
    assert compat({"event": ["exec_start"]}).matches(container("exec", **{DETAIL: "ls"}))
    assert compat({"event": ["exec_create"]}).matches(container("exec_create", **{DETAIL: "ls"}))
    assert compat({"event": ["health_status: unhealthy"]}).matches(
        container("health_status", health_status="unhealthy")
    )
    assert not compat({"event": ["health_status: healthy"]}).matches(
        container("health_status", health_status="unhealthy")
    )
    assert not compat({"event": ["exec"]}).matches(container("exec_create", **{DETAIL: "ls"}))


def test_status_is_podmans_alias_of_event() -> None:
    assert libpod({"status": ["died"]}).matches(container("died"))
    assert not libpod({"status": ["died"]}).matches(container("start"))


def test_values_or_within_a_key_and_across_keys() -> None:
    f = compat({"type": ["container", "image"], "event": ["die", "start"]})
    assert f.matches(container("died"))
    assert f.matches(container("start"))
    assert not f.matches(container("create"))
    assert not f.matches(event("volume", "died", "v"))


@pytest.mark.parametrize(
    ("key", "e", "yes", "no"),
    [
        ("container", container("start"), ["web", "/web", "cccc", CID], ["db", "we", "d", "front"]),
        ("volume", event("volume", "create", "data", name="data"), ["data", "da"], ["web", "x"]),
        (
            "network",
            event("network", "create", NID, name="front"),
            ["front", "nnn", NID],
            ["fro", "web"],
        ),
        ("pod", event("pod", "start", PID, name="pod1"), ["pod1", "ppp"], ["pod", "web"]),
        ("secret", event("secret", "create", SID, name="token"), ["token", "sss"], ["tok"]),
        (
            "image",
            event("image", "pull", IID, name="docker.io/library/busybox:latest"),
            ["busybox", "busybox:latest", "docker.io/library/busybox", "111", "sha256:111"],
            ["alpine", "busy", "busybox:1.36", "222"],
        ),
        (
            "image",
            container("create"),
            ["busybox", "busybox:1.36", "docker.io/library/busybox:1.36"],
            ["busybox:latest", "alpine", "ccc"],
        ),
    ],
)
def test_object_filters_by_name_or_id(key: str, e: Event, yes: list[str], no: list[str]) -> None:
    for value in yes:
        assert compat({key: [value]}).matches(e), value
        assert libpod({key: [value]}).matches(e), value
    for value in no:
        assert not compat({key: [value]}).matches(e), value
        assert not libpod({key: [value]}).matches(e), value


@pytest.mark.parametrize("key", ["container", "volume", "network", "pod", "secret"])
def test_object_filters_keep_only_their_type(key: str) -> None:
    """A network connect names a container in its attributes, but ``container=`` selects
    container events (Docker and Podman alike)."""
    connect = event("network", "connect", NID, name="front", container=CID)
    if key != "network":
        assert not compat({key: [NID]}).matches(connect)
    assert not compat({key: ["nothing"]}).matches(container("start"))


def test_labels_docker_and_podman() -> None:
    e = container("start", tier="front", app="x")
    for f in (compat, libpod):
        assert f({"label": ["tier"]}).matches(e)
        assert f({"label": ["tier=front"]}).matches(e)
        assert not f({"label": ["tier=back"]}).matches(e)
    # Docker AND-s label values; Podman 4.3.1 OR-s them.
    assert not compat({"label": ["tier=front", "app=y"]}).matches(e)
    assert libpod({"label": ["tier=front", "app=y"]}).matches(e)
    assert not compat({"label": [DETAIL]}).matches(container("exec", **{DETAIL: "ls"}))


def test_scope_and_swarm_keys_are_known() -> None:
    assert compat({"scope": ["local"]}).matches(container("start"))
    assert not compat({"scope": ["swarm"]}).matches(container("start"))
    assert not compat({"service": ["x"]}).matches(container("start"))


def test_unknown_filter_key_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="colour"):
        compat({"colour": ["red"]})
    with pytest.raises(InvalidArgument):
        libpod({"type": ["container"], "names": ["x"]})


keys = st.sampled_from(sorted(FILTER_KEYS - {"since", "until"}))
values = st.lists(
    st.sampled_from(["web", "ccc", "die", "died", "container", "front", "local", "x"]), max_size=3
)
all_events = st.sampled_from([e for e, _, _ in EVENTS])


@given(st.dictionaries(keys, values, max_size=4), all_events)
def test_keys_are_and_ed(filters: dict[str, list[str]], e: Event) -> None:
    """A filter set matches exactly when every one-key filter in it does, on both streams."""
    for make in (compat, libpod):
        each = all(make({k: v}).matches(e) for k, v in filters.items())
        assert make(filters).matches(e) == each


@given(
    st.lists(
        st.sampled_from(["die", "died", "start", "destroy", "remove", "oom"]),
        min_size=1,
        max_size=4,
    ),
    all_events,
)
def test_event_values_are_or_ed(wanted: list[str], e: Event) -> None:
    for make in (compat, libpod):
        any_one = any(make({"event": [v]}).matches(e) for v in wanted)
        assert make({"event": wanted}).matches(e) == any_one
