"""Property: a create body in either dialect is refused with a 4xx, or the container it
makes can be listed, inspected, started and removed (issue 18: a create value the list
could not read back broke ``docker ps`` for every client)."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.integration.containers_support import IMAGE, server_with_image
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

EXAMPLES = 60

#: Any JSON value, small: what a confused or hostile client puts where a field belongs.
ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=5,
)
WORDS = st.text("abcxyz019-_./:=", max_size=8)
PORTS = st.sampled_from(
    ["80", "80/tcp", "53/udp", "8000-8002/tcp", "0", "70000", "x", "80/tcq", ""]
)
NUMBERS = (
    st.integers(0, 10**9)
    | st.sampled_from([0, -1, 1, 6 * 1024 * 1024, 2**63])
    | st.integers(-(2**64), 2**64)
)


def _field(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes any JSON at all."""
    return st.one_of(valid, valid, valid, valid, ANY_JSON)


def _sometimes(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """An object holding up to three of ``fields`` (more would mostly be refused)."""
    chosen = st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)
    return chosen.flatmap(lambda keys: st.fixed_dictionaries({k: _field(fields[k]) for k in keys}))


DOCKER_HOST = _sometimes(
    {
        "Memory": NUMBERS,
        "MemorySwap": NUMBERS,
        "CpuShares": NUMBERS,
        "CpuQuota": NUMBERS,
        "CpuPeriod": NUMBERS,
        "NanoCpus": NUMBERS,
        "PidsLimit": NUMBERS,
        "ShmSize": NUMBERS,
        "OomScoreAdj": NUMBERS,
        "CpusetCpus": st.sampled_from(["0", "0-1", "x", ""]),
        "Ulimits": st.lists(
            _sometimes(
                {
                    "Name": st.sampled_from(["nofile", "nproc", "x"]),
                    "Soft": NUMBERS,
                    "Hard": NUMBERS,
                }
            ),
            max_size=2,
        ),
        "PortBindings": st.dictionaries(
            PORTS,
            st.lists(
                _sometimes({"HostIp": st.sampled_from(["", "127.0.0.1", "x"]), "HostPort": PORTS}),
                max_size=2,
            ),
            max_size=2,
        ),
        "RestartPolicy": _sometimes(
            {
                "Name": st.sampled_from(["no", "always", "on-failure", "x"]),
                "MaximumRetryCount": NUMBERS,
            }
        ),
        "Tmpfs": st.dictionaries(
            st.sampled_from(["/t", "t", ""]), st.sampled_from(["", "size=1m", "ro"])
        ),
        "Mounts": st.lists(
            _sometimes(
                {
                    "Type": st.sampled_from(["tmpfs", "volume", "bind"]),
                    "Target": st.sampled_from(["/m", "m", ""]),
                    "TmpfsOptions": _sometimes({"SizeBytes": NUMBERS, "Mode": NUMBERS}),
                    "BindOptions": _sometimes({"Propagation": WORDS}),
                }
            ),
            max_size=2,
        ),
        "LogConfig": _sometimes(
            {
                "Type": st.sampled_from(["json-file", "k8s-file", "x"]),
                "Config": st.dictionaries(WORDS, WORDS),
            }
        ),
        "Sysctls": st.dictionaries(
            st.sampled_from(["net.ipv4.ip_forward", "x"]), st.sampled_from(["1", ""])
        ),
        "Dns": st.lists(st.sampled_from(["1.1.1.1", "x"]), max_size=2),
        "ExtraHosts": st.lists(st.sampled_from(["a:1.2.3.4", "x"]), max_size=2),
        "CapAdd": st.lists(st.sampled_from(["NET_ADMIN", "CAP_X"]), max_size=2),
        "Privileged": st.booleans(),
        "Init": st.booleans(),
        "PublishAllPorts": st.booleans(),
        "NetworkMode": st.sampled_from(["bridge", "none", "host", "x"]),
        "ConsoleSize": st.lists(NUMBERS, max_size=3),
    }
)
DOCKER_BODY = _sometimes(
    {
        "Hostname": WORDS,
        "User": st.sampled_from(["", "0", "0:0", "root", "nobody:x"]),
        "Env": st.lists(st.sampled_from(["A=1", "B", "=x"]), max_size=3),
        "Labels": st.dictionaries(WORDS, WORDS, max_size=2),
        "StopSignal": st.sampled_from(["SIGTERM", "9", "SIGRTMIN+3", "x", "0"]),
        "StopTimeout": NUMBERS,
        "ExposedPorts": st.dictionaries(PORTS, st.just({}), max_size=2),
        "Volumes": st.dictionaries(st.sampled_from(["/v", "v", ""]), st.just({}), max_size=2),
        "WorkingDir": st.sampled_from(["/", "/w", "w", ""]),
        "Healthcheck": _sometimes(
            {"Test": st.just(["CMD", "true"]), "Interval": NUMBERS, "Retries": NUMBERS}
        ),
        "Tty": st.booleans(),
        "HostConfig": DOCKER_HOST,
    }
)
LIBPOD_BODY = _sometimes(
    {
        "hostname": WORDS,
        "user": st.sampled_from(["", "0", "root"]),
        "env": st.dictionaries(WORDS, WORDS, max_size=2),
        "labels": st.dictionaries(WORDS, WORDS, max_size=2),
        "annotations": st.dictionaries(WORDS, WORDS, max_size=2),
        "stop_signal": st.sampled_from(["SIGTERM", "x"]) | NUMBERS,
        "stop_timeout": NUMBERS,
        "expose": st.dictionaries(
            st.sampled_from(["80", "x", "0", "70000"]), st.sampled_from(["tcp", "udp", "x"])
        ),
        "portmappings": st.lists(
            _sometimes(
                {
                    "container_port": NUMBERS,
                    "host_port": NUMBERS,
                    "protocol": st.sampled_from(["tcp", "x"]),
                    "range": NUMBERS,
                }
            ),
            max_size=2,
        ),
        "r_limits": st.lists(
            _sometimes(
                {
                    "type": st.sampled_from(["RLIMIT_NOFILE", "nproc", "x"]),
                    "soft": NUMBERS,
                    "hard": NUMBERS,
                }
            ),
            max_size=2,
        ),
        "resource_limits": _sometimes(
            {
                "memory": _sometimes({"limit": NUMBERS}),
                "pids": _sometimes({"limit": NUMBERS}),
                "cpu": _sometimes({"shares": NUMBERS}),
            }
        ),
        "mounts": st.lists(
            _sometimes(
                {
                    "destination": st.sampled_from(["/m", "m"]),
                    "type": st.just("tmpfs"),
                    "options": st.lists(WORDS, max_size=2),
                }
            ),
            max_size=2,
        ),
        "log_configuration": _sometimes(
            {"driver": st.sampled_from(["k8s-file", "x"]), "size": NUMBERS}
        ),
        "restart_policy": st.sampled_from(["no", "always", "x"]),
        "restart_tries": NUMBERS,
        "shm_size": NUMBERS,
        "oom_score_adj": NUMBERS,
        "sysctl": st.dictionaries(
            st.sampled_from(["net.ipv4.ip_forward", "x"]), st.sampled_from(["1", ""])
        ),
        "netns": _sometimes({"nsmode": st.sampled_from(["bridge", "none", "host", "x"])}),
        "work_dir": st.sampled_from(["/", "/w", "w"]),
        "terminal": st.booleans(),
        "healthconfig": _sometimes({"Test": st.just(["CMD", "true"]), "Interval": NUMBERS}),
    }
)


@pytest.fixture(scope="module")
def target(
    tmp_path_factory: pytest.TempPathFactory, busybox_archive: Path
) -> Iterator[ServerProcess]:
    """One server for every example (a server per example would take minutes)."""
    server = server_with_image(tmp_path_factory, "create-property", busybox_archive)
    yield server
    try:
        server.remove_containers()
    finally:
        server.stop()


def _call(server: ServerProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    reply = server.request(method, path, data, {"Content-Type": "application/json"}, timeout=60)
    decoded = json.loads(reply.body) if reply.body.strip().startswith((b"{", b"[")) else reply.body
    return reply.status, decoded


def _refused_cleanly(status: int, body: Any, what: str) -> None:
    assert 400 <= status < 500, (what, status, body)
    assert isinstance(body, dict) and set(body) == {"cause", "message", "response"}, body


def _usable(server: ServerProcess, created: str, what: Any) -> None:
    """Listed and inspected on both trees, started (or refused with a 4xx), removed."""
    for path in ("/v1.44/containers/json?all=true", "/v5.0.0/libpod/containers/json?all=true"):
        status, listed = _call(server, "GET", path)
        assert status == 200, (what, path, listed)
        assert created in {c["Id"] for c in listed}
    for path in (f"/v1.44/containers/{created}/json", f"/v5.0.0/libpod/containers/{created}/json"):
        status, inspected = _call(server, "GET", path)
        assert status == 200, (what, path, inspected)
    status, body = _call(server, "POST", f"/v1.44/containers/{created}/start")
    if status >= 300:
        _refused_cleanly(status, body, what)
    status, body = _call(server, "DELETE", f"/v1.44/containers/{created}?force=true")
    assert status == 204, (what, status, body)


def _check(server: ServerProcess, path: str, body: dict[str, Any]) -> None:
    status, answer = _call(server, "POST", path, body)
    event(f"create answered {status}")
    if status == 201:
        _usable(server, answer["Id"], body)
    else:
        _refused_cleanly(status, answer, body)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=DOCKER_BODY)
def test_docker_create_bodies_are_refused_or_usable(
    target: ServerProcess, body: dict[str, Any]
) -> None:
    """Docker's create: every body is a 4xx or a container that lists, inspects, starts, goes."""
    _check(target, "/v1.44/containers/create", {"Image": IMAGE, "Cmd": ["true"], **body})


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=LIBPOD_BODY)
def test_libpod_create_bodies_are_refused_or_usable(
    target: ServerProcess, body: dict[str, Any]
) -> None:
    """Podman's create (SpecGenerator): the same property."""
    _check(
        target, "/v5.0.0/libpod/containers/create", {"image": IMAGE, "command": ["true"], **body}
    )
