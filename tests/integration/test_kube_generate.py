"""``kube generate`` through the real socket: ``podman --remote kube generate`` /
``generate kube --service`` (4.3.1's client, ``GET /libpod/generate/kube``) and plain HTTP
for ``type=deployment``; every document passes Kubernetes' schema offline
(kubernetes-validate), and two calls give the same bytes.

Real socket; the containers are only created (generation reads their configuration).
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import kubernetes_validate
import pytest
import yaml

from tests.integration.containers_support import IMAGE, needs_podman, podman
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

NAME = "kweb"


def validated(text: str) -> list[dict[str, Any]]:
    """The YAML stream's documents, each checked against Kubernetes' schema."""
    documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    for doc in documents:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    return documents


def generate(server: ServerProcess, path: str = "/libpod/kube/generate", **query: Any) -> bytes:
    reply = server.request("GET", f"/v4.3.1{path}?{urlencode(query, doseq=True)}")
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/yaml"
    return reply.body


@pytest.fixture
def made(box: ServerProcess, tmp_path: Path) -> Iterator[Path]:
    """A container with most of what a Pod can say, a named volume and a bind."""
    conf = tmp_path / "conf"
    conf.mkdir()
    podman(
        box,
        tmp_path,
        "create",
        "--name",
        NAME,
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:5353:53/udp",
        "--env",
        "GREETING=hello",
        "--workdir",
        "/srv",
        "-v",
        "kdata:/data",
        "-v",
        f"{conf}:/conf:ro",
        "--memory",
        "64m",
        "--cpus",
        "1.5",
        "--label",
        "tier=backend",
        "--annotation",
        "team=blue",
        "--restart",
        "always",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "CHOWN",
        "--user",
        "1000:1000",
        "--read-only",
        "--hostname",
        "kbox",
        "--entrypoint",
        "/bin/sh",
        IMAGE,
        "-c",
        "sleep 100",
    )
    try:
        yield conf
    finally:
        podman(box, tmp_path, "rm", "-f", NAME)
        podman(box, tmp_path, "volume", "rm", "-f", "kdata")


@needs_podman
def test_podman_remote_kube_generate_a_container(
    box: ServerProcess, made: Path, tmp_path: Path
) -> None:
    """Every field the container set is in the Pod, and the Pod is valid Kubernetes."""
    out = podman(box, tmp_path, "kube", "generate", NAME).stdout
    [pod] = validated(out)
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["name"] == f"{NAME}-pod"
    assert pod["metadata"]["labels"] == {"app": f"{NAME}-pod", "tier": "backend"}
    assert pod["metadata"]["annotations"] == {f"team/{NAME}": "blue"}
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["spec"]["hostname"] == "kbox"
    [ctr] = pod["spec"]["containers"]
    assert ctr["name"] == NAME
    assert ctr["image"].endswith(IMAGE + ":latest")
    assert ctr["command"] == ["/bin/sh"]
    assert ctr["args"] == ["-c", "sleep 100"]
    assert ctr["env"] == [{"name": "GREETING", "value": "hello"}]
    assert ctr["workingDir"] == "/srv"
    assert ctr["ports"] == [
        {"containerPort": 80, "hostPort": 8080},
        {"containerPort": 53, "hostIP": "127.0.0.1", "hostPort": 5353, "protocol": "UDP"},
    ]
    assert ctr["resources"] == {"limits": {"cpu": "1500m", "memory": "64Mi"}}
    assert ctr["securityContext"] == {
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["CHOWN"]},
        "readOnlyRootFilesystem": True,
        "runAsGroup": 1000,
        "runAsUser": 1000,
    }
    mounts = {m["mountPath"]: m for m in ctr["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[mounts["/data"]["name"]]["persistentVolumeClaim"] == {"claimName": "kdata"}
    assert mounts["/conf"]["readOnly"] is True
    assert volumes[mounts["/conf"]["name"]]["hostPath"] == {
        "path": str(made),
        "type": "Directory",
    }
    # A fixed point: the same bytes on the next call (no timestamps, no random NodePorts).
    assert podman(box, tmp_path, "kube", "generate", NAME).stdout == out


@needs_podman
def test_podman_remote_generate_kube_service_and_volume(
    box: ServerProcess, made: Path, tmp_path: Path
) -> None:
    """``--service`` adds a NodePort Service for the published ports; a volume's name
    gives its PersistentVolumeClaim; helm's order: PVC, Service, Pod."""
    out = podman(box, tmp_path, "generate", "kube", "--service", NAME, "kdata").stdout
    claim, service, pod = validated(out)
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["metadata"]["name"] == "kdata"
    assert service["kind"] == "Service"
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["selector"] == {"app": f"{NAME}-pod"}
    assert [(p["port"], p.get("protocol", "TCP")) for p in service["spec"]["ports"]] == [
        (80, "TCP"),
        (53, "UDP"),
    ]
    assert pod["kind"] == "Pod"
    assert podman(box, tmp_path, "generate", "kube", "--service", NAME, "kdata").stdout == out


def test_deployment_with_replicas_over_http(box: ServerProcess, made: Path) -> None:
    """``type=deployment&replicas=2`` on both paths: one Deployment of the same pod."""
    body = generate(box, names=[NAME], type="deployment", replicas=2)
    [deployment] = validated(body.decode())
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": f"{NAME}-pod"}}
    [ctr] = deployment["spec"]["template"]["spec"]["containers"]
    assert ctr["name"] == NAME
    again = generate(box, "/libpod/generate/kube", names=[NAME], type="deployment", replicas=2)
    assert again == body


def test_unknown_name_and_bad_parameters(box: ServerProcess, made: Path) -> None:
    """404 for an unknown name, 400 for an unknown type, in Podman's error body."""
    reply = box.request("GET", "/v4.3.1/libpod/kube/generate?names=kweb&names=nosuchthing")
    assert reply.status == 404
    error = json.loads(reply.body)
    assert error["response"] == 404
    assert error["message"] == 'name or ID "nosuchthing" not found'
    assert set(error) == {"cause", "message", "response"}
    reply = box.request("GET", "/v4.3.1/libpod/kube/generate?names=kweb&type=daemonset")
    assert reply.status == 400
    assert json.loads(reply.body)["response"] == 400
    reply = box.request("GET", "/v4.3.1/libpod/kube/generate")
    assert reply.status == 400


def test_two_containers_make_one_pod_named_after_the_first(box: ServerProcess, made: Path) -> None:
    """``names=kweb&names=kside``: one Pod ``kweb-pod`` with both, in the order named."""
    reply = box.request(
        "POST",
        "/v4.3.1/libpod/containers/create",
        body=json.dumps(
            {"name": "kside", "image": IMAGE, "command": ["sleep", "5"], "user": "nobody"}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 201, reply.body
    try:
        [pod] = validated(generate(box, names=[NAME, "kside"]).decode())
        assert pod["metadata"]["name"] == f"{NAME}-pod"
        names = [c["name"] for c in pod["spec"]["containers"]]
        assert names == [NAME, "kside"]
        assert pod["spec"]["containers"][1]["args"] == ["sleep", "5"]
        assert "command" not in pod["spec"]["containers"][1]
        # A user name is looked up in the container's /etc/passwd.
        assert pod["spec"]["containers"][1]["securityContext"] == {
            "runAsGroup": 65534,
            "runAsUser": 65534,
        }
    finally:
        assert box.request("DELETE", "/v4.3.1/libpod/containers/kside?force=true").status == 200


@needs_podman
def test_podman_remote_kube_generate_a_pod(box: ServerProcess, tmp_path: Path) -> None:
    """``kube generate POD``: one Pod named as the pod, its containers under their own
    names, infra left out, the pod's published port on the first container; same bytes twice."""
    podman(
        box, tmp_path, "pod", "create", "--name", "kpod", "--label", "tier=web", "-p", "18089:80"
    )
    try:
        podman(box, tmp_path, "create", "--pod", "kpod", "--name", "kapp", IMAGE, "httpd", "-f")
        first = podman(box, tmp_path, "kube", "generate", "kpod").stdout
        assert podman(box, tmp_path, "kube", "generate", "kpod").stdout == first
        [pod] = validated(first)
        assert pod["kind"] == "Pod"
        assert pod["metadata"]["name"] == "kpod"
        assert pod["metadata"]["labels"]["tier"] == "web"
        [container] = pod["spec"]["containers"]
        assert container["name"] == "kapp"
        assert container["args"] == ["httpd", "-f"]
        assert container["ports"] == [{"containerPort": 80, "hostPort": 18089}]
    finally:
        podman(box, tmp_path, "pod", "rm", "-f", "kpod")
