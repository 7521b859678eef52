"""Kubernetes YAML streams read into what ``kube play`` and ``kube down`` work on.

Pure, no I/O: :func:`parse_documents` reads the stream with PyYAML's safe loader,
:func:`read_bundle` sorts the documents by kind into a :class:`KubeBundle` -- the pods
to make (:class:`Workload`: a Pod is one pod of its name; a Deployment ``replicas``
pods ``<name>-pod-<i>`` as Podman 4.3.1; a DaemonSet and a Job one pod ``<name>-pod``
as newer Podman), ConfigMaps, Secrets and PersistentVolumeClaims.  The small
``as_*`` readers turn a malformed field into a 400 naming it.

A document of a kind we do not play is a 400 (Podman 4.3.1 skips it silently, and the
user learns nothing ran); a Service is accepted and creates nothing (its pods publish
their ``hostPort``\\ s themselves).
"""

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import field, frozen

from podapi.errors import InvalidArgument

WORKLOADS = ("Pod", "Deployment", "DaemonSet", "Job")
KINDS = (*WORKLOADS, "ConfigMap", "Secret", "PersistentVolumeClaim", "Service")
#: PVC annotations -> volume options (``util.Volume*Annotation``).
VOLUME_ANNOTATIONS = {
    "volume.podman.io/device": "device",
    "volume.podman.io/type": "type",
    "volume.podman.io/uid": "UID",
    "volume.podman.io/gid": "GID",
    "volume.podman.io/mount-options": "o",
}
DRIVER_ANNOTATION = "volume.podman.io/driver"


@frozen
class ClaimPlan:
    """A PersistentVolumeClaim as the named volume it becomes."""

    name: str
    labels: Mapping[str, str] = field(factory=dict)
    driver: str = ""
    options: Mapping[str, str] = field(factory=dict)


@frozen
class KubeSecret:
    """A Secret document: its decoded ``data`` and ``stringData``."""

    name: str
    data: Mapping[str, bytes]
    immutable: bool = False


@frozen
class Workload:
    """A pod to make: its name and its template (``metadata`` and ``spec``)."""

    name: str
    template: Mapping[str, Any]


@frozen
class KubeBundle:
    """The documents of one YAML stream, by what they become."""

    workloads: tuple[Workload, ...] = ()
    config_maps: Mapping[str, Mapping[str, bytes]] = field(factory=dict)
    secrets: tuple[KubeSecret, ...] = ()
    claims: tuple[ClaimPlan, ...] = ()


def bad(message: str) -> InvalidArgument:
    """A 400 worded as Podman's play errors."""
    return InvalidArgument(message, cause="invalid kube YAML")


def as_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad(f"{where} must be a mapping")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(f"{where} must be a list")
    return value


def as_mappings(value: Any, where: str) -> list[Mapping[str, Any]]:
    return [as_mapping(item, where) for item in as_list(value, where)]


def as_text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise bad(f"{where} must be a string")
    return str(value)


def as_strings(value: Any, where: str) -> dict[str, str]:
    return {str(k): as_text(v, f"{where}.{k}") for k, v in as_mapping(value, where).items()}


def as_int(value: Any, where: str, default: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{where} must be an integer")
    return value


def parse_documents(raw: bytes) -> list[Mapping[str, Any]]:
    """The documents of a YAML stream (empty ones skipped); 400 when it is not YAML."""
    import yaml  # noqa: PLC0415 (on first use: PyYAML costs some 20 ms of every cold start)

    try:
        documents = list(yaml.safe_load_all(raw))
    except yaml.YAMLError as e:
        raise bad(f"multi doc yaml could not be split: {e}") from None
    found: list[Mapping[str, Any]] = []
    for doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise bad("a YAML document must be a Kubernetes object (a mapping)")
        found.append(doc)
    if not found:
        raise bad("YAML document does not contain any supported kube kind")
    return found


def decode_base64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{where} is not valid base64") from None


def config_map_data(doc: Mapping[str, Any]) -> tuple[str, dict[str, bytes]]:
    """A ConfigMap's name and its keys (``data`` as text, ``binaryData`` decoded)."""
    name = object_name(doc, "ConfigMap")
    data = {k: v.encode() for k, v in as_strings(doc.get("data"), "data").items()}
    for key, value in as_strings(doc.get("binaryData"), "binaryData").items():
        if key in data:
            raise bad(
                f"the ConfigMap {name!r} is invalid: duplicate key {key!r} present in data "
                "and binaryData"
            )
        data[key] = decode_base64(value, f"ConfigMap {name} binaryData.{key}")
    return name, data


def object_name(doc: Mapping[str, Any], kind: str) -> str:
    name = as_text(as_mapping(doc.get("metadata"), "metadata").get("name"), "metadata.name")
    if not name.strip():
        raise bad(f"{kind} does not have a name")
    return name


def read_bundle(documents: Iterable[Mapping[str, Any]]) -> KubeBundle:
    """Sort the documents by kind (400 for a kind we do not play or a nameless object)."""
    workloads: list[Workload] = []
    config_maps: dict[str, Mapping[str, bytes]] = {}
    secrets: list[KubeSecret] = []
    claims: list[ClaimPlan] = []
    for doc in documents:
        kind = as_text(doc.get("kind"), "kind")
        if kind not in KINDS:
            raise bad(
                f"unsupported kube kind {kind or '(none)'!r}: kube play takes {', '.join(KINDS)}"
            )
        if kind == "Service":
            continue  # ports only: the pods publish their hostPorts themselves
        name = object_name(doc, kind)
        spec = as_mapping(doc.get("spec"), "spec")
        if kind == "Pod":
            workloads.append(Workload(name, {"metadata": doc["metadata"], "spec": spec}))
        elif kind == "Deployment":
            replicas = as_int(spec.get("replicas"), "spec.replicas", 1)
            template = as_mapping(spec.get("template"), "spec.template")
            workloads += [Workload(f"{name}-pod-{i}", template) for i in range(max(replicas, 0))]
        elif kind in ("DaemonSet", "Job"):
            workloads.append(
                Workload(f"{name}-pod", as_mapping(spec.get("template"), "spec.template"))
            )
        elif kind == "ConfigMap":
            key, data = config_map_data(doc)
            config_maps[key] = data
        elif kind == "Secret":
            secrets.append(_secret(doc, name))
        else:
            claims.append(_claim(doc, name))
    names = [w.name for w in workloads]
    for duplicate in {n for n in names if names.count(n) > 1}:
        raise bad(f"the pod {duplicate!r} is defined more than once")
    return KubeBundle(tuple(workloads), config_maps, tuple(secrets), tuple(claims))


def _secret(doc: Mapping[str, Any], name: str) -> KubeSecret:
    data = {
        key: decode_base64(value, f"Secret {name} data.{key}")
        for key, value in as_strings(doc.get("data"), "data").items()
    }
    data.update({k: v.encode() for k, v in as_strings(doc.get("stringData"), "stringData").items()})
    return KubeSecret(name, data, doc.get("immutable") is True)


def _claim(doc: Mapping[str, Any], name: str) -> ClaimPlan:
    metadata = as_mapping(doc.get("metadata"), "metadata")
    annotations = as_strings(metadata.get("annotations"), "metadata.annotations")
    options = {VOLUME_ANNOTATIONS[k]: v for k, v in annotations.items() if k in VOLUME_ANNOTATIONS}
    return ClaimPlan(
        name=name,
        labels=as_strings(metadata.get("labels"), "metadata.labels"),
        driver=annotations.get(DRIVER_ANNOTATION, ""),
        options=options,
    )


def secret_payload(data: Mapping[str, bytes]) -> bytes:
    """How a played Secret is stored: Go's ``map[string][]byte`` JSON (base64 values),
    what Podman's ``k8sSecretFromSecretManager`` reads back."""
    return json.dumps(
        {k: base64.b64encode(v).decode() for k, v in data.items()}, sort_keys=True
    ).encode()


def secret_from_payload(name: str, payload: bytes) -> dict[str, bytes]:
    """The keys of a stored secret written by :func:`secret_payload` (400 otherwise)."""
    try:
        found = json.loads(payload)
        return {str(k): base64.b64decode(str(v), validate=True) for k, v in found.items()}
    except (ValueError, AttributeError, binascii.Error):
        raise bad(
            f"secret {name} is not valid JSON of base64 values (a Kubernetes secret)"
        ) from None


def referenced_secrets(bundle: KubeBundle) -> set[str]:
    """Names of the secrets the workloads read (env, envFrom, volumes)."""
    found: set[str] = set()
    for workload in bundle.workloads:
        spec = as_mapping(workload.template.get("spec"), "spec")
        for volume in as_list(spec.get("volumes"), "spec.volumes"):
            source = as_mapping(volume, "volume").get("secret")
            if isinstance(source, dict) and source.get("secretName"):
                found.add(str(source["secretName"]))
        for container in as_mappings(spec.get("containers"), "spec.containers"):
            for item in as_list(container.get("env"), "env"):
                ref = as_mapping(as_mapping(item, "env").get("valueFrom"), "valueFrom")
                if isinstance(ref.get("secretKeyRef"), dict):
                    found.add(str(ref["secretKeyRef"].get("name")))
            for item in as_mappings(container.get("envFrom"), "envFrom"):
                secret_ref = item.get("secretRef")
                if isinstance(secret_ref, dict):
                    found.add(str(secret_ref.get("name")))
    return found


def pod_names(bundle: KubeBundle) -> list[str]:
    """The pods the bundle makes (what ``kube down`` removes)."""
    return [w.name for w in bundle.workloads]


def volume_names(bundle: KubeBundle) -> list[str]:
    """The named volumes the bundle makes or fills (claims, ConfigMap and Secret
    volumes, claimed volumes): what ``kube down`` with ``force`` removes."""
    found = [c.name for c in bundle.claims]
    for workload in bundle.workloads:
        spec = as_mapping(workload.template.get("spec"), "spec")
        for item in as_mappings(spec.get("volumes"), "volumes"):
            for kind, key in (
                ("persistentVolumeClaim", "claimName"),
                ("configMap", "name"),
                ("secret", "secretName"),
            ):
                source = item.get(kind)
                if isinstance(source, dict) and source.get(key):
                    found.append(str(source[key]))
    return list(dict.fromkeys(found))
