"""The Kubernetes -> engine spec mapping of kube play: documents by kind, pod and
container specs, env sources, volumes, resources, ports, and the 400s of bad YAML."""

from typing import Any

import pytest
import yaml

from podapi.engine.containerspec import MountSpec, NetworkEndpoint, PortSpec
from podapi.engine.kube.documents import (
    parse_documents,
    pod_names,
    read_bundle,
    referenced_secrets,
    secret_from_payload,
    secret_payload,
    volume_names,
)
from podapi.engine.kube.generate import KubeContainer, PodDescription, pod_document
from podapi.engine.kube.play import (
    KUBE_NETWORK,
    PlayOptions,
    PodPlan,
    parse_publish,
    parse_quantity,
    plan_pod,
)
from podapi.errors import InvalidArgument

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web, tier: front}
  annotations: {team/app: blue, note: all}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox
    command: [/bin/sh, -c]
    args: [env]
    workingDir: /srv
    env:
    - {name: PLAIN, value: one}
    - name: FROM_MAP
      valueFrom: {configMapKeyRef: {name: conf, key: colour}}
    - name: FROM_SECRET
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: POD
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    envFrom:
    - configMapRef: {name: conf}
      prefix: CM_
    ports:
    - {containerPort: 80, hostPort: 8080}
    - {containerPort: 9000}
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: config, mountPath: /etc/conf, readOnly: true}
    - {name: config, mountPath: /etc/one.conf, subPath: colour}
    - {name: scratch, mountPath: /tmp/scratch}
    - {name: host, mountPath: /host}
    resources:
      limits: {memory: 64Mi, cpu: 500m}
      requests: {memory: 32Mi}
    securityContext:
      runAsUser: 1000
      runAsGroup: 100
      capabilities: {add: [NET_ADMIN], drop: [CHOWN]}
  - name: side
    image: busybox
    tty: true
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: web-data}
  - name: config
    configMap: {name: conf}
  - name: scratch
    emptyDir: {}
  - name: host
    hostPath: {path: /srv/host, type: DirectoryOrCreate}
"""
CONFIG = {"conf": {"colour": b"blue", "size": b"L"}}
SECRETS = {"creds": {"password": b"s3cret"}}


def plan(text: str = POD, options: PlayOptions | None = None, **kwargs: Any) -> PodPlan:
    [workload] = read_bundle(parse_documents(text.encode())).workloads
    return plan_pod(
        workload,
        options=options or PlayOptions(),
        config_maps=kwargs.get("config_maps", CONFIG),
        secrets=kwargs.get("secrets", SECRETS),
        volume_path=lambda name: f"/volumes/{name}/_data",
    )


def test_pod_spec_from_the_template() -> None:
    spec = plan().spec
    assert spec.name == "web"
    assert spec.labels == {"app": "web", "tier": "front"}
    assert spec.hostname == ""  # unset: the pod's name answers, and generate stays a fixed point
    assert spec.share == ("ipc", "net", "uts")
    # Only hostPorts are published (newer Podman): a bare containerPort is not.
    assert spec.ports == (PortSpec(container_port=80, host_port=8080),)
    assert spec.networks == (NetworkEndpoint(KUBE_NETWORK),)


def test_containers_named_after_the_pod_with_command_args_env() -> None:
    app, side = plan().containers
    spec = app.spec
    assert spec.name == "web-app"
    assert side.spec.name == "web-side"
    assert side.spec.tty is True
    assert spec.entrypoint == ("/bin/sh", "-c")
    assert spec.command == ("env",)
    assert spec.working_dir == "/srv"
    # envFrom first, env over it, in order.
    assert spec.env == (
        "CM_colour=blue",
        "CM_size=L",
        "PLAIN=one",
        "FROM_MAP=blue",
        "FROM_SECRET=s3cret",
        "POD=web",
    )
    assert spec.user == "1000:100"
    assert spec.cap_add == ("NET_ADMIN",)
    assert spec.cap_drop == ("CHOWN",)
    assert spec.resources.memory == 64 * 2**20
    assert spec.resources.memory_reservation == 32 * 2**20
    assert (spec.resources.cpu_quota, spec.resources.cpu_period) == (50_000, 100_000)
    assert spec.restart_policy.name == "no"
    assert spec.labels == {"app": "web", "tier": "front"}
    assert app.pull_policy == "missing"


def test_termination_grace_period_is_the_stop_timeout() -> None:
    assert plan().containers[0].spec.stop_timeout is None
    text = POD.replace(
        "restartPolicy: Never", "restartPolicy: Never\n  terminationGracePeriodSeconds: 2"
    )
    assert {c.spec.stop_timeout for c in plan(text).containers} == {2}


def test_annotations_go_to_their_container() -> None:
    app, side = plan().containers
    assert app.spec.annotations == {"team": "blue", "note": "all"}
    assert side.spec.annotations == {"note": "all"}


def test_volumes_become_mounts() -> None:
    result = plan()
    mounts = result.containers[0].spec.mounts
    assert mounts == (
        MountSpec("volume", "/data", "web-data"),
        MountSpec("volume", "/etc/conf", "conf", readonly=True),
        MountSpec("bind", "/etc/one.conf", "/volumes/conf/_data/colour"),
        MountSpec("volume", "/tmp/scratch", ""),  # emptyDir: anonymous
        MountSpec("bind", "/host", "/srv/host"),
    )
    [files] = result.volume_files
    assert files.name == "conf"
    assert files.files == {"colour": b"blue", "size": b"L"}
    [host] = result.host_paths
    assert (host.path, host.directory) == ("/srv/host", True)


def test_deployment_replicas_daemonset_and_job_pod_names() -> None:
    stream = """
kind: Deployment
metadata: {name: api}
spec:
  replicas: 2
  template:
    spec: {containers: [{name: c, image: busybox}]}
---
kind: DaemonSet
metadata: {name: agent}
spec: {template: {spec: {containers: [{name: c, image: busybox}]}}}
---
kind: Job
metadata: {name: once}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}
---
kind: Service
metadata: {name: api}
spec: {ports: [{port: 80}]}
"""
    bundle = read_bundle(parse_documents(stream.encode()))
    assert pod_names(bundle) == ["api-pod-0", "api-pod-1", "agent-pod", "once-pod"]


def test_secrets_claims_and_config_maps() -> None:
    stream = """
kind: Secret
metadata: {name: creds}
data: {password: czNjcmV0}
stringData: {user: admin}
---
kind: ConfigMap
metadata: {name: conf}
data: {colour: blue}
binaryData: {blob: AAE=}
---
kind: PersistentVolumeClaim
metadata:
  name: db
  labels: {tier: db}
  annotations: {volume.podman.io/mount-options: noexec}
---
""" + POD.replace("apiVersion: v1\n", "")
    bundle = read_bundle(parse_documents(stream.encode()))
    [secret] = bundle.secrets
    assert secret.data == {"password": b"s3cret", "user": b"admin"}
    assert bundle.config_maps == {"conf": {"colour": b"blue", "blob": b"\0\1"}}
    [claim] = bundle.claims
    assert (claim.name, claim.labels, claim.options) == ("db", {"tier": "db"}, {"o": "noexec"})
    assert referenced_secrets(bundle) == {"creds"}
    assert volume_names(bundle) == ["db", "web-data", "conf"]


def test_secret_payload_round_trip() -> None:
    data = {"a": b"\0binary", "b": b"text"}
    assert secret_from_payload("x", secret_payload(data)) == data
    with pytest.raises(InvalidArgument):
        secret_from_payload("x", b"plain text")


def test_host_network_and_networks_option() -> None:
    host = POD.replace("restartPolicy: Never", "restartPolicy: Never\n  hostNetwork: true")
    assert plan(host).spec.network_mode == "host"
    chosen = plan(options=PlayOptions(networks=("one", "two")))
    assert chosen.spec.networks == (NetworkEndpoint("one"), NetworkEndpoint("two"))
    assert plan(options=PlayOptions(networks=("none",))).spec.network_mode == "none"


def test_publish_ports_win_for_the_ports_they_cover() -> None:
    spec = plan(options=PlayOptions(publish=("127.0.0.1:9090:80", "9000/udp"))).spec
    assert spec.ports == (
        PortSpec(container_port=80, host_port=9090, host_ip="127.0.0.1"),
        PortSpec(container_port=9000, protocol="udp"),
    )
    assert parse_publish("53:53/udp") == PortSpec(53, 53, "udp")


@pytest.mark.parametrize(
    ("text", "value"),
    [("64Mi", 64 * 2**20), ("1G", 10**9), ("500m", 0.5), ("1.5", 1.5), ("1e3", 1000), ("2k", 2000)],
)
def test_quantities(text: str, value: float) -> None:
    assert parse_quantity(text, "q") == pytest.approx(value)


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("kind: Pod\nmetadata: {name: x\n", "could not be split"),
        ("- a\n- b\n", "a mapping"),
        ("kind: Ingress\nmetadata: {name: x}\n", "unsupported kube kind 'Ingress'"),
        ("kind: Pod\nmetadata: {}\nspec: {}\n", "does not have a name"),
        ("", "does not contain any supported kube kind"),
    ],
)
def test_bad_documents(stream: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        read_bundle(parse_documents(stream.encode()))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("image: busybox\n    tty", "tty"), "missing the required 'image'"),
        (("name: side", "name: app"), "duplicate container name"),
        (("key: colour}}", "key: nope}}"), "key nope not found in configmap conf"),
        (("name: creds, key", "name: other, key"), "secret other not found"),
        (("name: data, mountPath", "name: nope, mountPath"), "not configured in volumes"),
        (("memory: 64Mi", "memory: lots"), "invalid quantity"),
        (("restartPolicy: Never", "restartPolicy: Sometimes"), "invalid restartPolicy"),
        (("emptyDir: {}", "nfs: {server: x}"), "only supported volume sources"),
    ],
)
def test_bad_pods(change: tuple[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        plan(POD.replace(*change, 1))


def test_an_optional_config_map_that_is_missing_is_skipped() -> None:
    text = POD.replace("configMap: {name: conf}", "configMap: {name: gone, optional: true}")
    text = text.replace("    - {name: config, mountPath: /etc/one.conf, subPath: colour}\n", "")
    mounts = plan(text).containers[0].spec.mounts
    assert all(m.source != "gone" for m in mounts)


def test_a_generated_pod_plays_back_to_the_same_names_and_fields() -> None:
    """generate's document, played, keeps the container names (as <pod>-<name>)."""
    doc = pod_document(
        PodDescription(
            name="shop",
            containers=(
                KubeContainer(
                    name="web",
                    image="docker.io/library/busybox:latest",
                    args=("httpd", "-f"),
                    env=(("A", "1"),),
                    working_dir="/www",
                    annotations={"team": "blue"},
                ),
            ),
            labels={"tier": "front"},
        )
    )
    result = plan(yaml.safe_dump(doc))
    [web] = result.containers
    assert web.spec.name == "shop-web"
    assert web.spec.command == ("httpd", "-f")
    assert web.spec.env == ("A=1",)
    assert web.spec.annotations == {"team": "blue"}
    assert result.spec.labels == {"tier": "front", "app": "shop"}


def test_base64_errors_are_400() -> None:
    bad = "kind: Secret\nmetadata: {name: s}\ndata: {k: '!!notbase64'}\n"
    with pytest.raises(InvalidArgument, match="not valid base64"):
        read_bundle(parse_documents(bad.encode()))
