"""Network list and prune filters (Docker's and Podman's keys)."""

from collections.abc import Callable, Mapping, Sequence

from podapi.engine.filters import labels_excluded, labels_match, name_patterns, truth
from podapi.engine.times import parse_timestamp
from podapi.errors import InvalidArgument
from podapi.oci.netavark import Network

FILTER_KEYS = frozenset({"name", "id", "driver", "label", "label!", "type", "dangling", "until"})


def network_filter(
    filters: Mapping[str, Sequence[str]],
    default: str,
    users: Mapping[str, Sequence[str]],
    now_ns: int,
) -> Callable[[Network], bool]:
    """Docker's and Podman's network list filters: keys AND-ed, values OR-ed (``label`` AND-ed)."""
    unknown = set(filters) - FILTER_KEYS
    if unknown:
        raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}")
    tests = [_network_test(k, v, default, users, now_ns) for k, v in filters.items()]
    return lambda network: all(test(network) for test in tests)


def _network_test(
    key: str,
    values: Sequence[str],
    default: str,
    users: Mapping[str, Sequence[str]],
    now_ns: int,
) -> Callable[[Network], bool]:
    if key == "name":
        patterns = name_patterns(values)
        return lambda n: any(p.search(n.name) for p in patterns)
    if key == "id":
        return lambda n: any(n.id.startswith(v) for v in values)
    if key == "driver":
        return lambda n: n.driver in values
    if key == "label":
        return lambda n: labels_match(values, n.labels)
    if key == "label!":
        return lambda n: labels_excluded(values, n.labels)
    if key == "type":
        if any(v not in ("custom", "builtin") for v in values):
            raise InvalidArgument(f"invalid filter type={list(values)!r}: custom or builtin")
        return lambda n: ("builtin" if n.name == default else "custom") in values
    if key == "dangling":
        wanted = {truth(key, v) for v in values}
        return lambda n: (not users.get(n.name)) in wanted
    limit = min(parse_timestamp(v, now_ns) for v in values)  # until
    return lambda n: parse_timestamp(n.created, now_ns) <= limit
