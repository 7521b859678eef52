"""Kubernetes documents (plain dicts) from pod and container descriptions.

Pure mapping, no I/O: :func:`pod_document` takes a :class:`PodDescription` (what a
pod is, whether it comes from a Podman pod or from containers alone) and answers the
``v1/Pod`` document; :func:`deployment_document`, :func:`service_document` and
:func:`pvc_document` wrap or accompany it.  Keys are dumped sorted (as Podman's
``sigs.k8s.io/yaml``, which goes through JSON), so the output is deterministic.

Differences from Podman 4.3.1, on purpose, so that generate -> play -> generate is a
fixed point and the documents are what Kubernetes accepts unchanged:

* no ``creationTimestamp`` (4.3.1 writes the time of the call: two calls never agree);
* a container's annotations become ``<key>/<container>`` once: a key that already ends
  in ``/<container>`` (a played annotation) is kept as it is (4.3.1 appends the name
  again on each round); Podman's own defaults (``io.container.manager``,
  ``io.kubernetes.cri-o.*``, ``io.podman.annotations.*``) are not written: the fields
  they echo (tty, privileged...) are in the container's spec already;
* the containers' labels are the pod's labels (4.3.1 drops them), with ``app``;
* capabilities are named as Kubernetes names them (``NET_ADMIN``, not ``CAP_NET_ADMIN``)
  and written only when they differ from the default set;
* a Service's ``nodePort`` is derived from the pod's name and the port (4.3.1 draws
  it at random on each call);
* ``restartPolicy`` is written for containers too (4.3.1 only for pods), and
  ``unless-stopped`` is ``Always`` (4.3.1: ``Never``).
"""

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import field, frozen

#: Kubernetes' NodePort range.
NODE_PORT_BASE = 30000
NODE_PORT_COUNT = 32767 - 30000 + 1
#: Labels whose values Podman turns into per-container annotations (auto-update).
AUTOUPDATE_LABEL = "io.containers.autoupdate"
RESTART_POLICIES = {
    "always": "Always",
    "unless-stopped": "Always",
    "on-failure": "OnFailure",
    "no": "Never",
    "": "Never",
}
#: The environment every container gets from Podman (and from us): not worth writing.
_DEFAULT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "TERM": "xterm",
    "container": "podman",
}
#: Annotations Podman (and its client) sets on every container: they echo fields the
#: Pod says already (tty, privileged, init...), so they are not written.
PODMAN_ANNOTATION_PREFIXES = (
    "io.container.manager",
    "io.kubernetes.cri-o.",
    "io.podman.annotations.",
    "org.opencontainers.image.stopSignal",
)
_BINARY_SUFFIXES = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20))


@frozen
class KubePort:
    """One published port of a container."""

    container_port: int
    host_port: int = 0
    protocol: str = "tcp"
    host_ip: str = ""


@frozen
class KubeMount:
    """A volume a container mounts: a named volume (``claim``) or a host path (``host_path``).

    ``host_path_type`` is Kubernetes' ``Directory``, ``File`` or ``DirectoryOrCreate``.
    """

    destination: str
    claim: str = ""
    host_path: str = ""
    host_path_type: str = "Directory"
    readonly: bool = False


@frozen
class KubeSecurity:
    """What a container's ``securityContext`` says; all unset: none is written."""

    privileged: bool = False
    readonly_rootfs: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    run_as_user: int | None = None
    run_as_group: int | None = None


@frozen
class KubeContainer:
    """A container as the Pod document shows it.

    ``command``/``args`` are None when the image's entrypoint/cmd stand; ``env`` only
    what differs from the image's and the defaults (see :func:`split_command`,
    :func:`env_difference`).
    """

    name: str
    image: str
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    ports: tuple[KubePort, ...] = ()
    mounts: tuple[KubeMount, ...] = ()
    memory_limit: int | None = None
    cpu_millis: int | None = None
    security: KubeSecurity = field(factory=KubeSecurity)
    tty: bool = False
    stdin: bool = False
    annotations: Mapping[str, str] = field(factory=dict)
    labels: Mapping[str, str] = field(factory=dict)
    restart_policy: str = "no"
    #: The hostname the user gave ("": the default, the short ID).
    hostname: str = ""


@frozen
class PodDescription:
    """A pod as the Pod document shows it.

    Built from containers alone today (:func:`pod_of_containers`); a Podman pod maps to
    the same: its name, labels, hostname, its containers (infra left out), whether it
    shares the host's network and the PID namespace.
    """

    name: str
    containers: tuple[KubeContainer, ...]
    labels: Mapping[str, str] = field(factory=dict)
    hostname: str = ""
    host_network: bool = False
    share_pid: bool = False
    #: None: the first container's restart policy.
    restart_policy: str | None = None


def kube_name(name: str) -> str:
    """Podman's container -> Kubernetes name rule: underscores removed."""
    return name.replace("_", "")


def pod_of_containers(containers: Sequence[KubeContainer]) -> PodDescription:
    """The pod ``kube generate ctr1 ctr2`` describes: named after the first container with
    ``-pod`` (Podman appends it when the name is a container's, so always here), the
    containers' labels, the first hostname a user gave."""
    name = containers[0].name + "-pod"
    labels: dict[str, str] = {}
    for container in containers:
        for key, value in container.labels.items():
            labels.setdefault(key, value)
    hostname = next((c.hostname for c in containers if c.hostname), "")
    return PodDescription(name=name, containers=tuple(containers), labels=labels, hostname=hostname)


def split_command(
    entrypoint: Sequence[str],
    command: Sequence[str],
    image_entrypoint: Sequence[str],
    image_cmd: Sequence[str],
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """``(command, args)`` for Kubernetes: the entrypoint is ``command``, the cmd ``args``,
    each only when it differs from the image's.  Kubernetes drops the image's cmd when
    ``command`` is given, so then ``args`` is always written; an emptied entrypoint
    makes the cmd the ``command``."""
    entrypoint, command = tuple(entrypoint), tuple(command)
    if entrypoint == tuple(image_entrypoint):
        return None, (command if command != tuple(image_cmd) else None)
    if entrypoint:
        return entrypoint, command or None
    return command or None, None


def env_difference(env: Sequence[str], image_env: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The container's ``K=V`` entries that are neither the image's nor Podman's defaults
    (nor ``HOSTNAME``, which the pod's hostname sets), in order."""
    image = dict(item.partition("=")[::2] for item in image_env if "=" in item)
    found: list[tuple[str, str]] = []
    for item in env:
        key, sep, value = item.partition("=")
        if not sep or key == "HOSTNAME":
            continue
        if _DEFAULT_ENV.get(key) == value or image.get(key) == value:
            continue
        found.append((key, value))
    return tuple(found)


def cpu_millis(quota: int | None, period: int | None) -> int | None:
    """A CFS quota/period as Kubernetes millicores; None under 1m or unset (Podman's rule)."""
    if not quota or not period or quota <= 0 or period <= 0:
        return None
    millis = int(1000 * quota / period)
    return millis if millis >= 1 else None


def memory_quantity(value: int) -> str:
    """Bytes as Kubernetes' canonical binary quantity: ``512Mi``, or plain bytes."""
    for suffix, unit in _BINARY_SUFFIXES:
        if value % unit == 0:
            return f"{value // unit}{suffix}"
    if value % 1024 == 0:
        return f"{value // 1024}Ki"
    return str(value)


def cpu_quantity(millis: int) -> str:
    """Millicores as Kubernetes' canonical decimal quantity: ``500m``, ``2``."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def restart_policy(name: str) -> str:
    """Podman's restart policy as Kubernetes': Always, OnFailure or Never."""
    return RESTART_POLICIES.get(name, "Never")


def volume_name(path: str) -> str:
    """A host path as a Kubernetes volume name (a DNS label): ``/mnt/data`` -> ``mnt-data``."""
    stripped = path.strip("/")
    if not stripped:
        return "root"
    text = "".join(c if c.isascii() and c.isalnum() else "-" for c in stripped.lower())
    return "-".join(part for part in text.split("-") if part)[:50] or "path"


def _ports(container: KubeContainer) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = []
    for port in container.ports:
        item: dict[str, Any] = {"containerPort": port.container_port}
        if port.host_port:
            item["hostPort"] = port.host_port
        if port.host_ip:
            item["hostIP"] = port.host_ip
        if port.protocol.lower() != "tcp":
            item["protocol"] = port.protocol.upper()
        ports.append(item)
    return ports


def _security(security: KubeSecurity) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if security.privileged:
        found["privileged"] = True
    if security.readonly_rootfs:
        found["readOnlyRootFilesystem"] = True
    capabilities: dict[str, list[str]] = {}
    if security.cap_add:
        capabilities["add"] = sorted(c.removeprefix("CAP_") for c in security.cap_add)
    if security.cap_drop:
        capabilities["drop"] = sorted(c.removeprefix("CAP_") for c in security.cap_drop)
    if capabilities:
        found["capabilities"] = capabilities
    if security.run_as_user is not None:
        found["runAsUser"] = security.run_as_user
    if security.run_as_group is not None:
        found["runAsGroup"] = security.run_as_group
    return found


def _mounts(container: KubeContainer, volumes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The container's ``volumeMounts``; adds its pod ``volumes`` (deduplicated) to ``volumes``."""
    mounts: list[dict[str, Any]] = []
    for index, mount in enumerate(container.mounts):
        volume: dict[str, Any]
        if mount.claim:
            name = f"{volume_name(mount.claim)}-pvc"
            claim: dict[str, Any] = {"claimName": mount.claim}
            if mount.readonly:
                claim["readOnly"] = True
            volume = {"name": name, "persistentVolumeClaim": claim}
        else:
            name = f"{volume_name(mount.host_path)}-host-{index}"
            volume = {
                "name": name,
                "hostPath": {"path": mount.host_path, "type": mount.host_path_type},
            }
        if name in volumes and volumes[name] != volume:
            name = f"{name}-{kube_name(container.name)}"[:63]
            volume = {**volume, "name": name}
        volumes[name] = volume
        item: dict[str, Any] = {"mountPath": mount.destination, "name": name}
        if mount.readonly:
            item["readOnly"] = True
        mounts.append(item)
    return mounts


def container_document(
    container: KubeContainer, volumes: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One entry of ``spec.containers``; its volumes are added to ``volumes``."""
    doc: dict[str, Any] = {"name": container.name, "image": container.image}
    if container.command is not None:
        doc["command"] = list(container.command)
    if container.args is not None:
        doc["args"] = list(container.args)
    if container.env:
        doc["env"] = [{"name": key, "value": value} for key, value in container.env]
    if container.working_dir:
        doc["workingDir"] = container.working_dir
    if ports := _ports(container):
        doc["ports"] = ports
    if mounts := _mounts(container, volumes):
        doc["volumeMounts"] = mounts
    limits: dict[str, str] = {}
    if container.memory_limit:
        limits["memory"] = memory_quantity(container.memory_limit)
    if container.cpu_millis:
        limits["cpu"] = cpu_quantity(container.cpu_millis)
    if limits:
        doc["resources"] = {"limits": limits}
    if security := _security(container.security):
        doc["securityContext"] = security
    if container.tty:
        doc["tty"] = True
    if container.stdin:
        doc["stdin"] = True
    return doc


def container_annotations(container: KubeContainer) -> dict[str, str]:
    """The pod annotations one container contributes: ``<key>/<container>``, once."""
    suffix = "/" + container.name
    found: dict[str, str] = {}
    for key, value in container.annotations.items():
        if key.startswith(PODMAN_ANNOTATION_PREFIXES):
            continue
        found[key if key.endswith(suffix) else key + suffix] = value.strip()
    for key, value in container.labels.items():
        if AUTOUPDATE_LABEL in key:
            found[key if key.endswith(suffix) else key + suffix] = value.strip()
    return found


def pod_document(pod: PodDescription) -> dict[str, Any]:
    """The ``v1/Pod`` document of ``pod``."""
    volumes: dict[str, dict[str, Any]] = {}
    annotations: dict[str, str] = {}
    containers = []
    for container in pod.containers:
        containers.append(container_document(container, volumes))
        annotations.update(container_annotations(container))
    policy = pod.restart_policy
    if policy is None:
        policy = pod.containers[0].restart_policy if pod.containers else "no"
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "containers": containers,
        "enableServiceLinks": False,
        "restartPolicy": restart_policy(policy),
    }
    if pod.hostname:
        spec["hostname"] = pod.hostname
    if pod.host_network:
        spec["hostNetwork"] = True
    if pod.share_pid:
        spec["shareProcessNamespace"] = True
    if volumes:
        spec["volumes"] = [volumes[name] for name in sorted(volumes)]
    metadata: dict[str, Any] = {
        "name": pod.name,
        "labels": {**pod.labels, "app": kube_name(pod.name)},
    }
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def deployment_document(pod: dict[str, Any], replicas: int) -> dict[str, Any]:
    """An ``apps/v1`` Deployment of ``replicas`` copies of the Pod document ``pod``."""
    metadata = pod["metadata"]
    app = metadata["labels"]["app"]
    template: dict[str, Any] = {"metadata": {"labels": dict(metadata["labels"])}}
    if metadata.get("annotations"):
        template["metadata"]["annotations"] = dict(metadata["annotations"])
    template["spec"] = {**pod["spec"], "restartPolicy": "Always"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{metadata['name']}-deployment", "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": template,
        },
    }


def node_port(pod_name: str, port: int, protocol: str, used: set[int]) -> int:
    """A NodePort for ``port`` of ``pod_name``, the same on every call, unique in ``used``."""
    start = zlib.crc32(f"{pod_name}/{port}/{protocol}".encode()) % NODE_PORT_COUNT
    for step in range(NODE_PORT_COUNT):
        candidate = NODE_PORT_BASE + (start + step) % NODE_PORT_COUNT
        if candidate not in used:
            used.add(candidate)
            return candidate
    raise ValueError("no NodePort left")


def service_document(pod: dict[str, Any]) -> dict[str, Any]:
    """The NodePort ``v1/Service`` for the published ports of the Pod document ``pod``."""
    metadata = pod["metadata"]
    used: set[int] = set()
    ports: list[dict[str, Any]] = []
    names: set[str] = set()
    for container in pod["spec"]["containers"]:
        for item in container.get("ports", ()):
            number = item["containerPort"]
            protocol = item.get("protocol", "TCP")
            name = str(number) if protocol == "TCP" else f"{number}-{protocol.lower()}"
            if name in names:
                continue
            names.add(name)
            port: dict[str, Any] = {
                "name": name,
                "nodePort": node_port(metadata["name"], number, protocol, used),
                "port": number,
                "targetPort": number,
            }
            if protocol != "TCP":
                port["protocol"] = protocol
            ports.append(port)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": metadata["name"], "labels": dict(metadata["labels"])},
        "spec": {
            "ports": ports,
            "selector": {"app": metadata["labels"]["app"]},
            "type": "NodePort",
        },
    }


#: Podman's volume options -> PVC annotations (``util.Volume*Annotation``).
_VOLUME_OPTION_ANNOTATIONS = {
    "o": "volume.podman.io/mount-options",
    "device": "volume.podman.io/device",
    "type": "volume.podman.io/type",
    "UID": "volume.podman.io/uid",
    "GID": "volume.podman.io/gid",
}


def pvc_document(
    name: str, driver: str, labels: Mapping[str, str], options: Mapping[str, str]
) -> dict[str, Any]:
    """A volume as the ``v1/PersistentVolumeClaim`` Podman writes (1Gi, ReadWriteOnce)."""
    annotations = {"volume.podman.io/driver": driver}
    for key, value in options.items():
        if key in _VOLUME_OPTION_ANNOTATIONS:
            annotations[_VOLUME_OPTION_ANNOTATIONS[key]] = value
    metadata: dict[str, Any] = {"name": name, "annotations": annotations}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
