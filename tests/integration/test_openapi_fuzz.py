"""Schemathesis over our own served OpenAPI document, both trees: valid and invalid
requests of every operation get an answer, and never a 5xx (issue 18).

Left out: operations that stream until the client hangs up or the container stops
(events, logs, stats, attach, wait, exec start, exports), that reach registries (pull,
push, search, login), and that take archives (load, import, archive upload, build,
kube play):
they are fuzzed by nothing meaningful from a schema, and other suites cover them.
"""

import json
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from tests.integration.containers_support import IMAGE, server_with_image
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

#: Examples per operation and generation mode (valid and invalid input); operations
#: with a JSON body get more, as most of the input is there.
EXAMPLES = 10
BODY_EXAMPLES = 50
#: Deliberate server-side answers, not failures: swarm without a swarm (503, as Docker
#: and Podman) and what Podman does not implement (501, secret update).
DELIBERATE = (501, 503)
#: A request not answered in this time is a hang.
ANSWER_TIMEOUT = 30.0
#: Prefix of the objects the fuzz run makes on purpose, so they can be found and removed.
PREFIX = "fz"
SKIPPED = {
    ("GET", "/events"),
    ("GET", "/libpod/events"),
    ("GET", "/containers/{name}/logs"),
    ("GET", "/libpod/containers/{name}/logs"),
    ("GET", "/containers/{name}/stats"),
    ("GET", "/libpod/containers/{name}/stats"),
    ("GET", "/libpod/containers/stats"),
    ("GET", "/libpod/pods/stats"),
    ("GET", "/containers/{name}/attach/ws"),
    ("POST", "/containers/{name}/attach"),
    ("POST", "/libpod/containers/{name}/attach"),
    ("POST", "/containers/{name}/wait"),
    ("POST", "/libpod/containers/{name}/wait"),
    ("POST", "/exec/{exec_id}/start"),
    ("POST", "/libpod/exec/{exec_id}/start"),
    ("GET", "/containers/{name}/export"),
    ("GET", "/libpod/containers/{name}/export"),
    ("GET", "/containers/{name}/archive"),
    ("GET", "/libpod/containers/{name}/archive"),
    ("PUT", "/containers/{name}/archive"),
    ("PUT", "/libpod/containers/{name}/archive"),
    ("GET", "/images/get"),
    ("GET", "/images/{name}/get"),
    ("GET", "/libpod/images/export"),
    ("GET", "/libpod/images/{name}/get"),
    ("GET", "/libpod/volumes/{name}/export"),
    ("POST", "/libpod/volumes/{name}/import"),
    ("POST", "/images/load"),
    ("POST", "/libpod/images/load"),
    ("POST", "/libpod/images/import"),
    ("POST", "/images/create"),
    ("POST", "/libpod/images/pull"),
    ("GET", "/images/search"),
    ("GET", "/libpod/images/search"),
    ("POST", "/images/{name}/push"),
    ("POST", "/libpod/images/{name}/push"),
    ("POST", "/libpod/manifests/{name}/push"),
    ("POST", "/libpod/manifests/{name}/registry/{destination}"),
    ("POST", "/auth"),
    ("GET", "/distribution/{name}/json"),
    ("POST", "/libpod/play/kube"),
    ("POST", "/libpod/kube/play"),
    ("POST", "/build"),
    ("POST", "/libpod/build"),
}


def _operations() -> list[Any]:
    raw = yaml.safe_load(
        (Path(__file__).parents[2] / "podapi" / "http" / "openapi.yaml").read_text()
    )
    schema = schemathesis.openapi.from_dict(raw)
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in SKIPPED:
            found.append(operation)
    return found


@pytest.fixture(scope="module")
def target(
    tmp_path_factory: pytest.TempPathFactory, busybox_archive: Path
) -> Iterator[ServerProcess]:
    """A server of its own with the test image and a named container, network and volume."""
    server = server_with_image(tmp_path_factory, "openapi-fuzz", busybox_archive)
    body = json.dumps({"Image": IMAGE, "Cmd": ["sleep", "1000"]}).encode()
    created = server.request(
        "POST",
        f"/v1.44/containers/create?name={PREFIX}-c",
        body,
        {"Content-Type": "application/json"},
    )
    assert created.status == 201, created.body
    for path, made in (
        ("/v1.44/networks/create", {"Name": f"{PREFIX}-net"}),
        ("/v1.44/volumes/create", {"Name": f"{PREFIX}-vol"}),
    ):
        reply = server.request(
            "POST", path, json.dumps(made).encode(), {"Content-Type": "application/json"}
        )
        assert reply.status == 201, reply.body
    yield server
    try:
        server.remove_containers()
        for pod in server.get_json("/v5.0.0/libpod/pods/json"):
            server.request("DELETE", f"/v5.0.0/libpod/pods/{pod['Id']}?force=true", timeout=60)
        for network in server.get_json("/v5.0.0/libpod/networks/json"):
            if network["name"] != server.default_network:
                reply = server.request(
                    "DELETE", f"/v5.0.0/libpod/networks/{network['id']}?force=true"
                )
                assert reply.status == 200, reply.body
    finally:
        server.stop()


def _send(server: ServerProcess, kwargs: dict[str, Any], statuses: Counter[int]) -> None:
    """Send one generated request and count its status (a 5xx or a timeout fails)."""
    url = urllib.parse.urlsplit(kwargs["url"])
    query = urllib.parse.urlencode(kwargs.get("params") or {}, doseq=True)
    target = url.path + (f"?{query}" if query else "")
    headers = {k: str(v) for k, v in (kwargs.get("headers") or {}).items()}
    body: bytes | None = None
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
        headers["Content-Type"] = "application/json"
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        body = data if isinstance(data, bytes) else str(data).encode()
    try:
        reply = server.request(kwargs["method"], target, body, headers, timeout=ANSWER_TIMEOUT)
    except TimeoutError as e:
        raise AssertionError(f"no answer in {ANSWER_TIMEOUT}s: {kwargs['method']} {target}") from e
    statuses[reply.status] += 1
    if reply.status >= 500 and reply.status not in DELIBERATE:
        raise AssertionError(
            f"{reply.status} for {kwargs['method']} {target} {body!r}: {reply.body!r}"
        )


def _fuzz(
    target: ServerProcess, strategy: Any, base: str, statuses: Counter[int], examples: int
) -> None:
    """Send ``examples`` requests drawn from ``strategy``."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        _send(target, case.as_transport_kwargs(base_url=base), statuses)

    run()


def test_every_operation_answers_without_server_errors(target: ServerProcess) -> None:
    """Valid and invalid requests of every fuzzed operation: no 5xx, no hang."""
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    unsatisfiable = 0
    for operation in _operations():
        base = "http://d/v5.0.0" if operation.path.startswith("/libpod/") else "http://d/v1.44"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            try:
                examples = BODY_EXAMPLES if operation.body else EXAMPLES
                _fuzz(target, strategy, base, statuses, examples)
            except AssertionError as e:
                failures.append(str(e).splitlines()[0][:400])
            except Unsatisfiable:  # nothing invalid to say to an operation without inputs
                unsatisfiable += 1
    print(
        f"requests: {sum(statuses.values())}, statuses: {dict(sorted(statuses.items()))}, "
        f"modes without examples: {unsatisfiable}"
    )
    assert failures == [], "\n".join(failures)
