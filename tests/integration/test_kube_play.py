"""``kube play`` / ``kube down`` through the real socket: ``podman --remote kube play``
and ``kube down`` (4.3.1's client: ``POST``/``DELETE /libpod/play/kube``), curl and plain
HTTP; the generate -> play -> generate round trip; manifests as people write them for
Kubernetes (ConfigMap, Secret, PVC, a two-replica Deployment, pulled from a registry);
and the 4xx answers of bad input, after which nothing is left behind.
"""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from tests.fixtures.registry import Registry
from tests.integration.containers_support import IMAGE, needs_podman, podman
from tests.integration.test_pods import free_port
from tests.integration.test_registry_images import seed
from tests.support import ServerProcess, wait_for

pytestmark = pytest.mark.integration

LIBPOD = "/v4.3.1/libpod"
KUBE_NETWORK = "podman-default-kube-network"


def play(
    server: ServerProcess, text: str, path: str = "/kube/play", **query: Any
) -> tuple[int, Any]:
    reply = server.request(
        "POST",
        f"{LIBPOD}{path}?{urlencode(query, doseq=True)}",
        text.encode(),
        {"Content-Type": "application/yaml"},
        timeout=120,
    )
    return reply.status, json.loads(reply.body)


def down(server: ServerProcess, text: str, **query: Any) -> tuple[int, Any]:
    reply = server.request(
        "DELETE", f"{LIBPOD}/kube/play?{urlencode(query)}", text.encode(), timeout=120
    )
    return reply.status, json.loads(reply.body)


def generate(server: ServerProcess, *names: str) -> str:
    reply = server.request("GET", f"{LIBPOD}/kube/generate?{urlencode({'names': names}, True)}")
    assert reply.status == 200, reply.body
    return reply.body.decode()


def names(server: ServerProcess, kind: str) -> set[str]:
    """Names of the pods, containers, volumes, secrets or networks ``server`` has."""
    path, key = {
        "pods": ("/pods/json", "Name"),
        "containers": ("/containers/json?all=true", "Names"),
        "volumes": ("/volumes/json", "Name"),
        "secrets": ("/secrets/json", "Spec"),
        "networks": ("/networks/json", "name"),
    }[kind]
    found = set()
    for item in server.get_json(f"{LIBPOD}{path}"):
        value = item[key]
        if kind == "containers":
            value = value[0]
        elif kind == "secrets":
            value = value["Name"]
        found.add(value)
    return found


def logs(server: ServerProcess, name: str) -> str:
    reply = server.request("GET", f"/v1.41/containers/{name}/logs?stdout=1&stderr=1")
    assert reply.status == 200, reply.body
    # Docker's multiplexed frames: 8-byte headers before each chunk.
    body, out = reply.body, b""
    while body:
        size = int.from_bytes(body[4:8], "big")
        out += body[8 : 8 + size]
        body = body[8 + size :]
    return out.decode()


def state(server: ServerProcess, name: str) -> str:
    status: str = server.get_json(f"{LIBPOD}/containers/{name}/json")["State"]["Status"]
    return status


@pytest.fixture
def snapshot(box: ServerProcess) -> Iterator[dict[str, set[str]]]:
    """What ``box`` holds before the test; the test must leave exactly that."""
    kinds = ("pods", "containers", "volumes", "secrets", "networks")
    before = {kind: names(box, kind) for kind in kinds}
    yield before
    after = {kind: names(box, kind) for kind in kinds}
    assert after == before


# --- round trip ------------------------------------------------------------------------


def test_generate_play_generate_is_a_fixed_point(
    box: ServerProcess, snapshot: dict[str, set[str]]
) -> None:
    """A pod made through the API, generated, removed, played: generate gives the same
    document; played and generated again, the same again (containers keep their names)."""
    port = free_port()
    made = box.request(
        "POST",
        f"{LIBPOD}/pods/create",
        json.dumps(
            {
                "name": "trip",
                "labels": {"tier": "web"},
                "portmappings": [{"container_port": 80, "host_port": port}],
            }
        ).encode(),
    )
    assert made.status == 201, made.body
    for body in (
        {
            "name": "web",
            "command": ["httpd", "-f", "-p", "80"],
            "env": {"GREETING": "hello"},
            "work_dir": "/srv",
            "labels": {"role": "server"},
            "volumes": [{"Name": "tripdata", "Dest": "/data"}],
        },
        {"name": "side", "entrypoint": ["/bin/sh", "-c"], "command": ["sleep 1000"]},
    ):
        reply = box.request(
            "POST",
            f"{LIBPOD}/containers/create",
            json.dumps({**body, "image": IMAGE, "pod": "trip"}).encode(),
        )
        assert reply.status == 201, reply.body
    try:
        first = generate(box, "trip")
        assert box.request("DELETE", f"{LIBPOD}/pods/trip?force=true").status == 200
        status, report = play(box, first)
        assert status == 200, report
        [pod] = report["Pods"]
        assert len(pod["Containers"]) == 2
        assert pod["ContainerErrors"] is None
        assert {state(box, "trip-web"), state(box, "trip-side")} == {"running"}
        second = generate(box, "trip")
        assert list(yaml.safe_load_all(second)) == list(yaml.safe_load_all(first))
        assert down(box, second)[0] == 200
        assert play(box, second)[0] == 200
        assert generate(box, "trip") == second
        [doc] = yaml.safe_load_all(second)
        assert [c["name"] for c in doc["spec"]["containers"]] == ["web", "side"]
        web = doc["spec"]["containers"][0]
        assert web["args"] == ["httpd", "-f", "-p", "80"]
        assert web["env"] == [{"name": "GREETING", "value": "hello"}]
        assert web["workingDir"] == "/srv"
        assert web["ports"] == [{"containerPort": 80, "hostPort": port}]
        assert doc["metadata"]["labels"] == {"app": "trip", "tier": "web"}
    finally:
        if "trip" in names(box, "pods"):
            down(box, generate(box, "trip"))
        assert box.request("DELETE", f"{LIBPOD}/volumes/tripdata").status == 204


# --- real-world manifests ----------------------------------------------------------------

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-config
data:
  colour: teal
  shop.conf: |
    greeting=welcome
---
apiVersion: v1
kind: Secret
metadata:
  name: shop-secret
type: Opaque
data:
  password: aHVudGVyMg==
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: shop-data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Service
metadata:
  name: shop
spec:
  selector:
    app: shop
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  labels:
    app: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: shop
  template:
    metadata:
      labels:
        app: shop
    spec:
      containers:
      - name: web
        image: {image}
        command: ["/bin/sh", "-c"]
        args:
        - >-
          cat /etc/shop/shop.conf;
          echo "colour=$COLOUR password=$PASSWORD pod=$POD_NAME";
          echo "$POD_NAME" >> /data/visits;
          exec sleep 1000
        env:
        - name: COLOUR
          valueFrom:
            configMapKeyRef:
              name: shop-config
              key: colour
        - name: PASSWORD
          valueFrom:
            secretKeyRef:
              name: shop-secret
              key: password
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        ports:
        - containerPort: 8080
        volumeMounts:
        - name: config
          mountPath: /etc/shop
          readOnly: true
        - name: data
          mountPath: /data
        - name: cache
          mountPath: /cache
      - name: helper
        image: {image}
        command: ["sh", "-c", "env | sort; exec sleep 1000"]
        envFrom:
        - configMapRef:
            name: shop-config
        - secretRef:
            name: shop-secret
      volumes:
      - name: config
        configMap:
          name: shop-config
      - name: data
        persistentVolumeClaim:
          claimName: shop-data
      - name: cache
        emptyDir: {{}}
"""


@needs_podman
def test_real_world_manifest_with_podman_remote(
    fresh: ServerProcess, registry: Registry, busybox_archive: Path, tmp_path: Path
) -> None:
    """``podman --remote kube play`` of a multi-document file (ConfigMap as a file and as
    env, Secret as env, PVC, emptyDir, a two-replica Deployment of an image it pulls):
    every container sees its values; ``kube down`` takes it all away but the claim."""
    image = seed(registry, busybox_archive, "kube/busybox:1")
    manifest = tmp_path / "shop.yaml"
    manifest.write_text(MANIFEST.format(image=image))
    out = podman(fresh, tmp_path, "kube", "play", str(manifest)).stdout
    assert "Volumes:\nshop-data\n" in out
    assert out.count("Pod:\n") == 2
    assert names(fresh, "pods") == {"shop-pod-0", "shop-pod-1"}
    for index in (0, 1):
        web, helper = f"shop-pod-{index}-web", f"shop-pod-{index}-helper"
        wait_for(lambda w=web: "pod=" in logs(fresh, w), timeout=30)  # type: ignore[misc]
        assert logs(fresh, web) == (
            f"greeting=welcome\ncolour=teal password=hunter2 pod=shop-pod-{index}\n"
        )
        wait_for(lambda h=helper: "password=" in logs(fresh, h), timeout=30)  # type: ignore[misc]
        env = logs(fresh, helper).splitlines()
        assert "colour=teal" in env
        assert "password=hunter2" in env
    # Both replicas wrote to the one claim.
    visits = subprocess.run(
        ["cat", f"{fresh.root}/volumes/shop-data/_data/visits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sorted(visits.split()) == ["shop-pod-0", "shop-pod-1"]
    assert KUBE_NETWORK in names(fresh, "networks")
    assert "shop-secret" in names(fresh, "secrets")

    out = podman(fresh, tmp_path, "kube", "down", str(manifest)).stdout
    assert out.startswith("Pods stopped:\n")
    assert out.count("\n") == 6  # two headers, two pods each
    assert names(fresh, "pods") == set()
    assert names(fresh, "containers") == set()
    assert "shop-secret" not in names(fresh, "secrets")
    assert KUBE_NETWORK not in names(fresh, "networks")
    # The claim and the ConfigMap's volume stay (Podman keeps volumes); emptyDirs go.
    assert names(fresh, "volumes") == {"shop-data", "shop-config"}
    status, report = down(fresh, manifest.read_text(), force="true")
    assert status == 404  # nothing left to take down
    assert play(fresh, manifest.read_text(), start="false")[0] == 200
    status, report = down(fresh, manifest.read_text(), force="true")
    assert status == 200
    assert [r["Err"] for r in report["RmReport"]] == [None, None]
    assert names(fresh, "volumes") == set()


@needs_podman
def test_podman_remote_replace_and_configmap_file(
    box: ServerProcess, tmp_path: Path, snapshot: dict[str, set[str]]
) -> None:
    """``kube play --replace`` plays a YAML again over itself (the 4.3.1 client takes it
    down first); ``configMaps=FILE`` gives a ConfigMap from a file on the server (the
    4.3.1 remote client has no ``--configmap``, so over HTTP)."""
    config = tmp_path / "cm.yaml"
    config.write_text("kind: ConfigMap\nmetadata: {name: extra}\ndata: {mood: calm}\n")
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "kind: Pod\nmetadata: {name: calm}\nspec:\n  restartPolicy: Never\n  containers:\n"
        f"  - name: c\n    image: {IMAGE}\n    command: [sh, -c, 'echo mood=$mood']\n"
        "    envFrom: [{configMapRef: {name: extra}}]\n"
    )
    status, report = play(box, manifest.read_text(), configMaps=str(config))
    assert status == 200, report
    try:
        wait_for(lambda: state(box, "calm-c") == "exited", timeout=30)
        assert logs(box, "calm-c") == "mood=calm\n"
        status, error = play(box, manifest.read_text(), configMaps=str(config))
        assert status == 409, error
        # Without the file the ConfigMap is missing: 400, and the pod is still the first.
        again = podman(box, tmp_path, "kube", "play", "--replace", str(manifest), check=False)
        assert again.returncode != 0
        assert "configmap extra not found" in again.stderr
        status, replaced = play(box, manifest.read_text(), configMaps=str(config), replace="true")
        assert status == 200, replaced
        assert replaced["Pods"][0]["ID"] != report["Pods"][0]["ID"]
    finally:
        out = podman(box, tmp_path, "kube", "down", str(manifest)).stdout
    assert out.startswith("Pods stopped:\n")


def test_curl_play_and_down_report_shapes(
    box: ServerProcess, tmp_path: Path, snapshot: dict[str, set[str]]
) -> None:
    """curl posts the file to the 4.3.1 path: the report has exactly 4.3.1's keys."""
    manifest = tmp_path / "one.yaml"
    manifest.write_text(
        "kind: Pod\nmetadata: {name: curled}\nspec:\n  containers:\n"
        f"  - name: c\n    image: {IMAGE}\n    command: [sleep, '1000']\n"
    )

    def curl(method: str) -> Any:
        result = subprocess.run(
            [
                "curl",
                "-s",
                "--unix-socket",
                str(box.sock),
                "-X",
                method,
                "--data-binary",
                f"@{manifest}",
                f"http://d{LIBPOD}/play/kube",
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        return json.loads(result.stdout)

    report = curl("POST")
    assert set(report) == {"Pods", "Volumes", "StopReport", "RmReport", "Secrets"}
    [pod] = report["Pods"]
    assert set(pod) == {"ID", "Containers", "InitContainers", "Logs", "ContainerErrors"}
    assert (report["Volumes"], report["StopReport"], report["Secrets"]) == (None, None, None)
    assert state(box, "curled-c") == "running"
    teardown = curl("DELETE")
    assert teardown["StopReport"] == [{"Errs": None, "Id": pod["ID"]}]
    assert teardown["RmReport"] == [{"Err": None, "Id": pod["ID"]}]
    assert teardown["Pods"] is None


# --- bad input -------------------------------------------------------------------------

GOOD_PARTS = """\
kind: Secret
metadata: {name: oops-secret}
stringData: {k: v}
---
kind: PersistentVolumeClaim
metadata: {name: oops-claim}
---
"""


@pytest.mark.parametrize(
    ("yaml_text", "status", "words"),
    [
        ("kind: Pod\nmetadata: {name: [x\n", 400, "could not be split"),
        ("kind: Widget\nmetadata: {name: w}\n", 400, "unsupported kube kind 'Widget'"),
        (
            GOOD_PARTS + "kind: Pod\nmetadata: {name: oops}\nspec:\n  containers:\n"
            "  - {name: c, image: localhost:1/nosuch/image:1}\n",
            404,
            "nosuch/image",
        ),
        (
            GOOD_PARTS + "kind: Pod\nmetadata: {name: oops}\nspec:\n  containers:\n"
            "  - {name: c, image: nosuchimage:never, imagePullPolicy: Never}\n",
            404,
            "nosuchimage",
        ),
        (
            # The second pod's name is refused at pod create: the first pod, its
            # containers, the secret, the claim and the network were made by then.
            GOOD_PARTS + f"kind: Pod\nmetadata: {{name: oops}}\nspec:\n  containers:\n"
            f"  - {{name: a, image: {IMAGE}}}\n  - {{name: b, image: {IMAGE}}}\n---\n"
            f"kind: Pod\nmetadata: {{name: 'no such!'}}\nspec:\n  containers:\n"
            f"  - {{name: a, image: {IMAGE}}}\n",
            400,
            "no such!",
        ),
    ],
)
def test_bad_input_is_4xx_and_leaves_nothing(
    box: ServerProcess, snapshot: dict[str, set[str]], yaml_text: str, status: int, words: str
) -> None:
    got, error = play(box, yaml_text)
    assert got == status, error
    assert set(error) == {"cause", "message", "response"}
    assert error["response"] == status
    assert words in error["message"]


def test_name_clash_without_replace_and_down_of_unknown(
    box: ServerProcess, snapshot: dict[str, set[str]]
) -> None:
    """409 when a pod of the YAML exists (nothing else made), 200 with ``replace``; down
    of a pod that is not there is 404."""
    text = (
        "kind: Pod\nmetadata: {name: twice}\nspec:\n  containers:\n"
        f"  - {{name: c, image: {IMAGE}, command: [sleep, '1000']}}\n"
    )
    first, report = play(box, text, path="/play/kube")
    assert first == 200, report
    try:
        status, error = play(box, text)
        assert status == 409
        assert "twice" in error["message"]
        status, again = play(box, text, replace="true")
        assert status == 200, again
        assert again["Pods"][0]["ID"] != report["Pods"][0]["ID"]
    finally:
        assert down(box, text)[0] == 200
    status, error = down(box, text)
    assert status == 404
    assert error["message"] == "no pod with name or ID twice found: no such pod"
