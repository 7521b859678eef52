"""Pod list filters (Podman's ``pkg/domain/filters/pods.go``) and the pod view they test."""

from collections.abc import Callable, Mapping, Sequence

from attrs import frozen

from podapi.engine.filters import labels_match, name_patterns
from podapi.engine.podspec import pod_status
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.state.pods import PodRecord
from podapi.engine.times import parse_timestamp
from podapi.errors import InvalidArgument

FILTER_KEYS = frozenset(
    {
        "id",
        "name",
        "label",
        "status",
        "network",
        "until",
        "ctr-names",
        "ctr-ids",
        "ctr-status",
        "ctr-number",
    }
)
POD_STATES = ("stopped", "running", "paused", "exited", "dead", "created", "degraded")
CONTAINER_STATES = ("created", "running", "paused", "stopped", "exited", "unknown")


@frozen
class PodView:
    """A pod with its containers (infra first) and its derived status."""

    record: PodRecord
    containers: tuple[ContainerRecord, ...]

    @property
    def status(self) -> str:
        """Podman's pod status (Created, Running, Degraded, Stopped, Exited, Paused, Dead)."""
        return pod_status(c.state for c in self.containers)

    @property
    def infra(self) -> ContainerRecord | None:
        """The infra container, if the pod has one."""
        return next((c for c in self.containers if c.id == self.record.infra_id), None)

    @property
    def networks(self) -> list[str]:
        """The networks of the infra container (where the pod's network lives)."""
        infra = self.infra
        return [e.name for e in infra.spec.networks] if infra is not None else []


def pod_matcher(filters: Mapping[str, Sequence[str]], now_ns: int) -> Callable[[PodView], bool]:
    """Keys AND-ed, values OR-ed (``label`` AND-ed); 400 for an unknown key or value.

    :param now_ns: the time relative ``until`` values (``10m``) count back from.
    """
    for key in filters:
        if key not in FILTER_KEYS:
            raise InvalidArgument(f"{key} is an invalid filter", cause="invalid filter")
    tests = [_test(k, list(v), now_ns) for k, v in filters.items()]
    return lambda view: all(test(view) for test in tests)


def _test(key: str, values: list[str], now_ns: int) -> Callable[[PodView], bool]:
    if key == "id":
        patterns = name_patterns(values)
        return lambda v: any(p.search(v.record.id) for p in patterns)
    if key == "name":
        patterns = name_patterns(values)
        return lambda v: any(p.search(v.record.name) for p in patterns)
    if key == "label":
        return lambda v: labels_match(values, v.record.spec.labels)
    if key == "status":
        for value in values:
            if value not in POD_STATES:
                raise InvalidArgument(f"{value} is not a valid status", cause="invalid filter")
        return lambda v: v.status.lower() in values
    if key == "network":
        return lambda v: any(n in values for n in v.networks)
    if key == "until":
        # Podman: pods created before the time (``util.ComputeUntilTimestamp``).
        try:
            limits = [parse_timestamp(value, now_ns) for value in values]
        except ValueError as e:
            raise InvalidArgument(f"invalid until filter: {e}", cause="invalid filter") from None
        return lambda v: any(v.record.created < limit for limit in limits)
    if key == "ctr-names":
        return lambda v: any(c.name in values for c in v.containers)
    if key == "ctr-ids":
        return lambda v: any(c.id.startswith(w) for c in v.containers for w in values)
    if key == "ctr-status":
        for value in values:
            if value not in CONTAINER_STATES:
                raise InvalidArgument(f"{value} is not a valid status", cause="invalid filter")
        return lambda v: any(_ctr_state(c) in values for c in v.containers)
    # ctr-number
    try:
        numbers = [int(value) for value in values]
    except ValueError:
        raise InvalidArgument(f"invalid ctr-number filter {values!r}") from None
    return lambda v: len(v.containers) in numbers


def _ctr_state(record: ContainerRecord) -> str:
    return {"initialized": "created", "stopping": "running"}.get(record.state, record.state)
