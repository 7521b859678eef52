"""The Kubernetes mapping of kube generate: command split, env, resources, ports, restart
policy, security, volumes, and that every document passes Kubernetes' schema."""

from typing import Any

import kubernetes_validate
import pytest

from podapi.engine.kube.describe import image_reference
from podapi.engine.kube.generate import (
    KubeContainer,
    KubeMount,
    KubePort,
    KubeSecurity,
    PodDescription,
    container_annotations,
    cpu_millis,
    cpu_quantity,
    deployment_document,
    env_difference,
    memory_quantity,
    pod_document,
    pod_of_containers,
    pvc_document,
    restart_policy,
    service_document,
    split_command,
    volume_name,
)


def valid(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize(
    ("entrypoint", "command", "expected"),
    [
        ((), ("sh",), (None, None)),  # the image's own
        ((), ("sleep", "9"), (None, ("sleep", "9"))),  # cmd overridden -> args
        (("/bin/tini", "--"), ("sh",), (("/bin/tini", "--"), ("sh",))),  # entrypoint -> command
        (("/bin/tini",), (), (("/bin/tini",), None)),
    ],
)
def test_command_args_split_against_an_image_with_cmd_sh(
    entrypoint: tuple[str, ...], command: tuple[str, ...], expected: Any
) -> None:
    assert split_command(entrypoint, command, (), ("sh",)) == expected


def test_command_split_against_an_image_with_an_entrypoint() -> None:
    # Same entrypoint as the image: only args, whatever they are.
    assert split_command(("/ep",), ("x",), ("/ep",), ("y",)) == (None, ("x",))
    assert split_command(("/ep",), ("y",), ("/ep",), ("y",)) == (None, None)
    # The entrypoint emptied: the cmd runs alone, as the command.
    assert split_command((), ("ls",), ("/ep",), ("y",)) == (("ls",), None)


def test_env_keeps_only_what_differs_from_the_image_and_the_defaults() -> None:
    env = (
        "HOSTNAME=abc",
        "container=podman",
        "TERM=xterm",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "IMG=same",
        "CHANGED=new",
        "MINE=1",
        "BARE",
    )
    image = ("IMG=same", "CHANGED=old")
    assert env_difference(env, image) == (("CHANGED", "new"), ("MINE", "1"))


def test_resources_as_kubernetes_quantities() -> None:
    assert memory_quantity(512 * 2**20) == "512Mi"
    assert memory_quantity(2**30) == "1Gi"
    assert memory_quantity(6 * 2**10) == "6Ki"
    assert memory_quantity(1000) == "1000"
    assert cpu_millis(150000, 100000) == 1500
    assert cpu_millis(50, 100000) is None  # under 1m
    assert cpu_millis(None, 100000) is None
    assert cpu_quantity(1500) == "1500m"
    assert cpu_quantity(2000) == "2"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("always", "Always"),
        ("unless-stopped", "Always"),
        ("on-failure", "OnFailure"),
        ("no", "Never"),
        ("", "Never"),
    ],
)
def test_restart_policy(policy: str, expected: str) -> None:
    assert restart_policy(policy) == expected
    container = KubeContainer(name="c", image="busybox", restart_policy=policy)
    assert pod_document(pod_of_containers([container]))["spec"]["restartPolicy"] == expected


def test_ports_tcp_implied_udp_named_host_ip_kept() -> None:
    container = KubeContainer(
        name="web",
        image="busybox",
        ports=(
            KubePort(80, 8080),
            KubePort(53, 5353, "udp", "127.0.0.1"),
            KubePort(9000),
        ),
    )
    doc = pod_document(pod_of_containers([container]))
    assert doc["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "hostPort": 8080},
        {"containerPort": 53, "hostPort": 5353, "hostIP": "127.0.0.1", "protocol": "UDP"},
        {"containerPort": 9000},
    ]
    valid(doc)
    service = service_document(doc)
    ports = service["spec"]["ports"]
    assert [(p["name"], p["port"], p.get("protocol")) for p in ports] == [
        ("80", 80, None),
        ("53-udp", 53, "UDP"),
        ("9000", 9000, None),
    ]
    assert all(30000 <= p["nodePort"] <= 32767 for p in ports)
    assert len({p["nodePort"] for p in ports}) == 3
    assert service_document(doc) == service  # the same NodePorts on every call
    assert service["spec"]["selector"] == {"app": "web-pod"}
    valid(service)


def test_a_full_container_and_its_deployment_validate() -> None:
    container = KubeContainer(
        name="app",
        image="docker.io/library/busybox:latest",
        command=("/bin/sh", "-c"),
        args=("sleep 100",),
        env=(("A", "1"),),
        working_dir="/srv",
        mounts=(
            KubeMount("/data", claim="appdata"),
            KubeMount("/conf", host_path="/etc/app", readonly=True),
            KubeMount("/one", host_path="/etc/hostname", host_path_type="File"),
        ),
        memory_limit=64 * 2**20,
        cpu_millis=500,
        security=KubeSecurity(
            readonly_rootfs=True,
            cap_add=("CAP_NET_ADMIN",),
            cap_drop=("CAP_MKNOD",),
            run_as_user=1000,
            run_as_group=100,
        ),
        tty=True,
        stdin=True,
        annotations={"team": "blue"},
        labels={"tier": "backend"},
        restart_policy="always",
    )
    doc = pod_document(pod_of_containers([container]))
    valid(doc)
    spec = doc["spec"]["containers"][0]
    assert spec["resources"] == {"limits": {"cpu": "500m", "memory": "64Mi"}}
    assert spec["securityContext"] == {
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
        "readOnlyRootFilesystem": True,
        "runAsGroup": 100,
        "runAsUser": 1000,
    }
    assert spec["volumeMounts"] == [
        {"mountPath": "/data", "name": "appdata-pvc"},
        {"mountPath": "/conf", "name": "etc-app-host-1", "readOnly": True},
        {"mountPath": "/one", "name": "etc-hostname-host-2"},
    ]
    volumes = {v["name"]: v for v in doc["spec"]["volumes"]}
    assert volumes["appdata-pvc"]["persistentVolumeClaim"] == {"claimName": "appdata"}
    assert volumes["etc-hostname-host-2"]["hostPath"] == {
        "path": "/etc/hostname",
        "type": "File",
    }
    assert doc["metadata"]["labels"] == {"tier": "backend", "app": "app-pod"}
    assert doc["metadata"]["annotations"] == {"team/app": "blue"}
    deployment = deployment_document(doc, 2)
    valid(deployment)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "app-pod"}}
    assert deployment["spec"]["template"]["metadata"]["labels"]["app"] == "app-pod"
    valid(pvc_document("appdata", "local", {"a": "b"}, {"type": "tmpfs", "o": "size=1m"}))


def test_annotations_are_not_multiplied_on_a_second_round() -> None:
    first = KubeContainer(name="web", image="busybox", annotations={"team": "blue"})
    once = container_annotations(first)
    assert once == {"team/web": "blue"}
    # What kube play gives the container back: the suffixed key.
    played = KubeContainer(name="web", image="busybox", annotations=once)
    assert container_annotations(played) == once


def test_pod_named_after_the_first_container_and_a_pod_description_maps_alike() -> None:
    a = KubeContainer(name="a", image="busybox")
    b = KubeContainer(name="b", image="alpine", hostname="bee")
    doc = pod_document(pod_of_containers([a, b]))
    assert doc["metadata"]["name"] == "a-pod"
    assert doc["spec"]["hostname"] == "bee"
    assert [c["name"] for c in doc["spec"]["containers"]] == ["a", "b"]
    pod = PodDescription(
        name="mypod",
        containers=(a, b),
        labels={"x": "y"},
        hostname="h",
        share_pid=True,
        restart_policy="on-failure",
    )
    doc = pod_document(pod)
    valid(doc)
    assert doc["spec"]["hostname"] == "h"
    assert doc["spec"]["shareProcessNamespace"] is True
    assert doc["spec"]["restartPolicy"] == "OnFailure"
    assert [c["name"] for c in doc["spec"]["containers"]] == ["a", "b"]


def test_volume_names_are_dns_labels() -> None:
    assert volume_name("/") == "root"
    assert volume_name("/mnt/Data_dir/") == "mnt-data-dir"


def test_podmans_default_annotations_are_left_out() -> None:
    container = KubeContainer(
        name="web",
        image="busybox",
        annotations={"io.kubernetes.cri-o.TTY": "false", "io.container.manager": "libpod"},
    )
    assert container_annotations(container) == {}


def test_image_reference_is_the_full_stored_name() -> None:
    names = ("docker.io/library/busybox:latest", "quay.io/x/y:1")
    assert image_reference("busybox", names) == "docker.io/library/busybox:latest"
    assert image_reference("quay.io/x/y:1", names) == "quay.io/x/y:1"
    assert image_reference("y:1", names) == "quay.io/x/y:1"
    assert image_reference("sha256abc", ()) == "sha256abc"
