"""Kubernetes documents -> the engine's own specs (what ``kube play`` creates).

Pure mapping, no I/O: given the documents :mod:`podapi.engine.kube.documents` read,
:func:`plan_pod` turns one pod template into the :class:`~podapi.engine.podspec.PodSpec` and
:class:`~podapi.engine.containerspec.ContainerSpec`\\ s that ``POST /libpod/pods/create``
and ``POST /libpod/containers/create`` would make, so a played pod is created through
the same engine calls as any other (:mod:`podapi.engine.kube.player` drives them).

As Podman (``pkg/domain/infra/abi/play.go``, ``pkg/specgen/generate/kube``): a Pod is
one pod of its name; a Deployment is ``replicas`` pods ``<name>-pod-<i>`` (4.3.1); a
DaemonSet and a Job one pod ``<name>-pod`` (newer Podman); containers are named
``<pod>-<container>`` (names are global, so two replicas need two names); every pod
shares ipc, net and uts (and pid with ``shareProcessNamespace``); a ConfigMap or Secret
volume is a named volume of its name holding one file per key; a PersistentVolumeClaim
is a named volume; an emptyDir an anonymous one; a hostPath a bind.

Differences from Podman, on purpose:

* only ports with a ``hostPort`` are published (newer Podman; 4.3.1 also publishes a
  bare ``containerPort`` on the same host port, so two replicas clash);
* ``env`` wins over ``envFrom`` as in Kubernetes (4.3.1 lets ``envFrom`` win);
* a pod's ``hostname`` stays unset when the YAML has none (the infra container
  answers the pod's name anyway), and an annotation ``<key>/<container>`` goes to
  that container alone as ``<key>`` (4.3.1 gives every annotation to every
  container): both keep generate -> play -> generate a fixed point;
* ``initContainers`` are refused (400) rather than run half-supported.
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from attrs import field, frozen

from podapi.engine.containerspec import (
    ContainerSpec,
    MountSpec,
    NetworkEndpoint,
    PortSpec,
    RestartPolicy,
)
from podapi.engine.kube.documents import (
    Workload,
    as_int,
    as_list,
    as_mapping,
    as_mappings,
    as_strings,
    as_text,
    bad,
)
from podapi.engine.podspec import DEFAULT_SHARE, PodSpec
from podapi.oci.spec import Resources

#: The network Podman creates for played pods when no ``network`` is asked
#: (``kubeDefaultNetwork``), DNS on, so pods find each other by name.
KUBE_NETWORK = "podman-default-kube-network"
RESTART_POLICIES = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}
PULL_POLICIES = {"Always": "always", "IfNotPresent": "missing", "Never": "never"}
#: CFS period Podman uses for ``resources.limits.cpu`` (``util.CoresToPeriodAndQuota``).
CPU_PERIOD = 100_000
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_UNITS = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate("kMGTPE")},
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}


@frozen
class VolumeFiles:
    """A ConfigMap or Secret volume: a named volume holding one file per key."""

    name: str
    files: Mapping[str, bytes]


@frozen
class HostPath:
    """A ``hostPath`` to create first (``DirectoryOrCreate``, ``FileOrCreate``)."""

    path: str
    directory: bool


@frozen
class ContainerPlan:
    """One container of a pod: its spec (``pod`` set once the pod exists) and pull policy."""

    spec: ContainerSpec
    pull_policy: str = "missing"


@frozen
class PodPlan:
    """One pod: its spec, containers, and the volumes and paths they need first."""

    spec: PodSpec
    containers: tuple[ContainerPlan, ...]
    volume_files: tuple[VolumeFiles, ...] = ()
    host_paths: tuple[HostPath, ...] = ()


@frozen
class PlayOptions:
    """``kube play``'s query: networks, extra published ports (``-p`` syntax), and the
    ConfigMaps of the ``configMaps`` files (read by the caller)."""

    networks: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    config_maps: Mapping[str, Mapping[str, bytes]] = field(factory=dict)


def parse_quantity(text: Any, where: str) -> Decimal:
    """A Kubernetes quantity (``64Mi``, ``500m``, ``1.5``, ``1e3``) as a number."""
    match = _QUANTITY.match(str(text).strip())
    if match is None:
        raise bad(f"{where}: invalid quantity {text!r}")
    try:
        return Decimal(match.group(1)) * _UNITS[match.group(2) or ""]
    except InvalidOperation:
        raise bad(f"{where}: invalid quantity {text!r}") from None


def _resources(container: Mapping[str, Any]) -> Resources:
    resources = as_mapping(container.get("resources"), "resources")
    limits = as_mapping(resources.get("limits"), "resources.limits")
    requests = as_mapping(resources.get("requests"), "resources.requests")
    memory = reservation = quota = period = None
    if limits.get("memory") is not None:
        memory = math.ceil(parse_quantity(limits["memory"], "limits.memory")) or None
    if requests.get("memory") is not None:
        reservation = math.ceil(parse_quantity(requests["memory"], "requests.memory")) or None
    if limits.get("cpu") is not None:
        millis = math.ceil(parse_quantity(limits["cpu"], "limits.cpu") * 1000)
        if millis > 0:
            quota, period = millis * CPU_PERIOD // 1000, CPU_PERIOD
    return Resources(
        memory=memory, memory_reservation=reservation, cpu_quota=quota, cpu_period=period
    )


def parse_publish(text: str) -> PortSpec:
    """A ``publishPorts`` entry, ``podman run -p`` syntax:
    ``[[ip:]hostPort:]containerPort[/protocol]``."""
    spec, _, protocol = text.partition("/")
    parts = spec.rsplit(":", 2)
    try:
        container = int(parts[-1])
        host = int(parts[-2]) if len(parts) > 1 and parts[-2] else 0
    except ValueError:
        raise bad(f"invalid publishPorts entry {text!r}") from None
    host_ip = parts[0].strip("[]") if len(parts) == 3 else ""
    return PortSpec(
        container_port=container, host_port=host, protocol=protocol or "tcp", host_ip=host_ip
    )


def _pod_ports(
    containers: Sequence[Mapping[str, Any]], publish: Sequence[str]
) -> tuple[PortSpec, ...]:
    """The ``hostPort``\\ s of every container, after the ``publishPorts`` entries
    (which win for the container ports they cover, as newer Podman's ``mergePublishPorts``)."""
    ports = [parse_publish(text) for text in publish]
    for container in containers:
        for item in as_mappings(container.get("ports"), "ports"):
            host = as_int(item.get("hostPort"), "hostPort")
            number = as_int(item.get("containerPort"), "containerPort") or host
            protocol = as_text(item.get("protocol"), "protocol").lower() or "tcp"
            if not host:
                continue
            if any(p.container_port == number and p.protocol == protocol for p in ports):
                continue
            ports.append(
                PortSpec(
                    container_port=number,
                    host_port=host,
                    protocol=protocol,
                    host_ip=as_text(item.get("hostIP"), "hostIP"),
                )
            )
    return tuple(ports)


def _network(options: PlayOptions, host_network: bool) -> tuple[str, tuple[NetworkEndpoint, ...]]:
    if host_network:
        return "host", ()
    names = options.networks or (KUBE_NETWORK,)
    if names[0] in ("host", "none"):
        return names[0], ()
    return "bridge", tuple(
        NetworkEndpoint(n.partition(":")[0]) for n in names if n not in ("bridge", "default")
    )


def pod_spec(name: str, template: Mapping[str, Any], options: PlayOptions) -> PodSpec:
    """A pod template as the spec ``pod create`` takes (``kube.ToPodOpt``)."""
    metadata = as_mapping(template.get("metadata"), "metadata")
    spec = as_mapping(template.get("spec"), "spec")
    containers = as_mappings(spec.get("containers"), "containers")
    network_mode, networks = _network(options, spec.get("hostNetwork") is True)
    dns = as_mapping(spec.get("dnsConfig"), "dnsConfig")
    dns_options = []
    for item in as_mappings(dns.get("options"), "dnsConfig.options"):
        value = item.get("value")
        dns_options.append(as_text(item.get("name"), "name") + (f":{value}" if value else ""))
    hosts = []
    for alias in as_mappings(spec.get("hostAliases"), "hostAliases"):
        for host in as_list(alias.get("hostnames"), "hostnames"):
            hosts.append(f"{host}:{as_text(alias.get('ip'), 'ip')}")
    share = DEFAULT_SHARE + (("pid",) if spec.get("shareProcessNamespace") is True else ())
    return PodSpec(
        name=name,
        labels=as_strings(metadata.get("labels"), "metadata.labels"),
        hostname=as_text(spec.get("hostname"), "hostname"),
        share=share,
        ports=_pod_ports(containers, options.publish),
        network_mode=network_mode,
        networks=networks,
        dns=tuple(
            as_text(s, "nameservers") for s in as_list(dns.get("nameservers"), "nameservers")
        ),
        dns_search=tuple(as_text(s, "searches") for s in as_list(dns.get("searches"), "searches")),
        dns_options=tuple(dns_options),
        extra_hosts=tuple(hosts),
    )


@frozen
class _Sources:
    """What a pod's containers may read: ConfigMaps, Secrets and the pod's volumes."""

    pod_name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    config_maps: Mapping[str, Mapping[str, bytes]]
    secrets: Mapping[str, Mapping[str, bytes]]


def _key_value(
    table: Mapping[str, Mapping[str, bytes]], what: str, ref: Mapping[str, Any], var: str
) -> str | None:
    """A ``configMapKeyRef`` or ``secretKeyRef``: None when missing and ``optional``."""
    name, key = as_text(ref.get("name"), "name"), as_text(ref.get("key"), "key")
    data = table.get(name)
    if data is None or key not in data:
        if ref.get("optional") is True:
            return None
        if data is None:
            raise bad(f"cannot set env {var}: {what} {name} not found")
        raise bad(f"cannot set env {var}: key {key} not found in {what} {name}")
    return data[key].decode(errors="replace")


_FIELD_LABEL = re.compile(r"^metadata\.labels\['(.+)'\]$")
_FIELD_ANNOTATION = re.compile(r"^metadata\.annotations\['(.+)'\]$")


def _field_value(sources: _Sources, ref: Mapping[str, Any], var: str) -> str:
    path = as_text(ref.get("fieldPath"), "fieldPath")
    if path == "metadata.name":
        return sources.pod_name
    if match := _FIELD_LABEL.match(path):
        return sources.labels.get(match.group(1), "")
    if match := _FIELD_ANNOTATION.match(path):
        return sources.annotations.get(match.group(1), "")
    raise bad(f"can not set env {var}: fieldPath {path} is either not valid or not supported")


def _env(container: Mapping[str, Any], sources: _Sources) -> tuple[str, ...]:
    """``envFrom`` first, then ``env`` over it (Kubernetes' precedence), order kept."""
    env: dict[str, str] = {}
    for item in as_mappings(container.get("envFrom"), "envFrom"):
        prefix = as_text(item.get("prefix"), "prefix")
        for kind, table in (("configMapRef", sources.config_maps), ("secretRef", sources.secrets)):
            ref = item.get(kind)
            if not isinstance(ref, dict):
                continue
            name = as_text(ref.get("name"), "name")
            data = table.get(name)
            if data is None:
                if ref.get("optional") is True:
                    continue
                what = "configmap" if kind == "configMapRef" else "secret"
                raise bad(f"{what} {name} not found")
            env.update({prefix + k: v.decode(errors="replace") for k, v in data.items()})
    for item in as_mappings(container.get("env"), "env"):
        var = as_text(item.get("name"), "env.name")
        source = as_mapping(item.get("valueFrom"), "valueFrom")
        value: str | None
        if isinstance(source.get("configMapKeyRef"), dict):
            value = _key_value(sources.config_maps, "configmap", source["configMapKeyRef"], var)
        elif isinstance(source.get("secretKeyRef"), dict):
            value = _key_value(sources.secrets, "secret", source["secretKeyRef"], var)
        elif isinstance(source.get("fieldRef"), dict):
            value = _field_value(sources, source["fieldRef"], var)
        elif source:
            raise bad(f"can not set env {var}: only configMapKeyRef, secretKeyRef and fieldRef")
        else:
            value = as_text(item.get("value"), f"env {var}")
        if value is not None:
            env.pop(var, None)  # a later definition moves to its own place
            env[var] = value
    return tuple(f"{k}={v}" for k, v in env.items())


def _user(container: Mapping[str, Any], pod: Mapping[str, Any]) -> str | None:
    context = as_mapping(container.get("securityContext"), "securityContext")
    pod_context = as_mapping(pod.get("securityContext"), "spec.securityContext")
    uid = context.get("runAsUser", pod_context.get("runAsUser"))
    gid = context.get("runAsGroup", pod_context.get("runAsGroup"))
    if uid is None and gid is None:
        return None
    user = str(as_int(uid, "runAsUser")) if uid is not None else "0"
    return f"{user}:{as_int(gid, 'runAsGroup')}" if gid is not None else user


def _annotations(annotations: Mapping[str, str], name: str, others: set[str]) -> dict[str, str]:
    """The pod's annotations one container gets: ``<key>/<name>`` as ``<key>``, the ones
    without a container suffix as they are, those of the other containers not at all."""
    found: dict[str, str] = {}
    suffix = "/" + name
    for key, value in annotations.items():
        if key.endswith(suffix):
            found[key.removesuffix(suffix)] = value
        elif key.rpartition("/")[2] not in others:
            found.setdefault(key, value)
    return found


@frozen
class _Volume:
    """A pod volume as its containers mount it."""

    type: str  # bind, volume
    source: str = ""
    files: VolumeFiles | None = None
    readonly: bool = False
    skip: bool = False


def _volumes(
    spec: Mapping[str, Any], sources: _Sources
) -> tuple[dict[str, _Volume], list[HostPath]]:
    """The pod's ``volumes`` by name (``kube.InitializeVolumes``)."""
    found: dict[str, _Volume] = {}
    paths: list[HostPath] = []
    for item in as_mappings(spec.get("volumes"), "volumes"):
        name = as_text(item.get("name"), "volume name")
        if isinstance(item.get("hostPath"), dict):
            host = item["hostPath"]
            path = as_text(host.get("path"), "hostPath.path")
            if not path.startswith("/"):
                raise bad(f"failed to create volume {name!r}: hostPath {path!r} is not absolute")
            kind = as_text(host.get("type"), "hostPath.type")
            if kind in ("DirectoryOrCreate", "FileOrCreate"):
                paths.append(HostPath(path, kind == "DirectoryOrCreate"))
            found[name] = _Volume("bind", path)
        elif isinstance(item.get("persistentVolumeClaim"), dict):
            claim = item["persistentVolumeClaim"]
            found[name] = _Volume(
                "volume",
                as_text(claim.get("claimName"), "claimName"),
                readonly=claim.get("readOnly") is True,
            )
        elif isinstance(item.get("configMap"), dict):
            found[name] = _keyed_volume(item["configMap"], "name", sources.config_maps, "ConfigMap")
        elif isinstance(item.get("secret"), dict):
            found[name] = _keyed_volume(item["secret"], "secretName", sources.secrets, "Secret")
        elif "emptyDir" in item:
            found[name] = _Volume("volume")
        else:
            raise bad(
                f"failed to create volume {name!r}: HostPath, ConfigMap, Secret, EmptyDir and "
                "PersistentVolumeClaim are the only supported volume sources"
            )
    return found, paths


def _keyed_volume(
    source: Mapping[str, Any], key: str, table: Mapping[str, Mapping[str, bytes]], kind: str
) -> _Volume:
    """A ConfigMap or Secret volume: its keys (or its ``items``) as files."""
    name = as_text(source.get(key), f"{kind} volume {key}")
    data = table.get(name)
    if data is None:
        if source.get("optional") is True:
            return _Volume("volume", name, skip=True)
        raise bad(f"no such {kind} {name!r}")
    items = as_mappings(source.get("items"), "items")
    if items:
        files = {}
        for entry in items:
            wanted = as_text(entry.get("key"), "items.key")
            if wanted in data:
                files[as_text(entry.get("path"), "items.path") or wanted] = data[wanted]
    else:
        files = dict(data)
    for path in files:
        if path.startswith("/") or ".." in path.split("/"):
            raise bad(f"{kind} {name}: invalid file name {path!r}")
    return _Volume("volume", name, files=VolumeFiles(name, files))


def _mounts(
    container: Mapping[str, Any],
    volumes: Mapping[str, _Volume],
    volume_path: Callable[[str], str],
) -> tuple[MountSpec, ...]:
    mounts = []
    for item in as_mappings(container.get("volumeMounts"), "volumeMounts"):
        name = as_text(item.get("name"), "volumeMount name")
        volume = volumes.get(name)
        if volume is None:
            raise bad(f"volume mount {name} specified for container but not configured in volumes")
        if volume.skip:
            continue
        destination = as_text(item.get("mountPath"), "mountPath")
        if not destination.startswith("/"):
            raise bad(f"invalid mountPath {destination!r}: must be absolute")
        readonly = item.get("readOnly") is True or volume.readonly
        sub_path = as_text(item.get("subPath"), "subPath").strip("/")
        if sub_path and (
            ".." in sub_path.split("/") or volume.type != "volume" or not volume.source
        ):
            raise bad(f"subPath {sub_path!r} of volume {name}: only inside a named volume")
        if sub_path:  # a file or directory of the volume, as Kubernetes mounts it
            source = f"{volume_path(volume.source)}/{sub_path}"
            mounts.append(MountSpec("bind", destination, source, readonly=readonly))
        else:
            mounts.append(MountSpec(volume.type, destination, volume.source, readonly=readonly))
    return tuple(mounts)


def plan_pod(
    workload: Workload,
    *,
    options: PlayOptions,
    config_maps: Mapping[str, Mapping[str, bytes]],
    secrets: Mapping[str, Mapping[str, bytes]],
    volume_path: Callable[[str], str],
) -> PodPlan:
    """The pod ``workload`` makes (``playKubePod``): its spec and its containers'.

    :param config_maps: the ConfigMaps of the YAML and of ``configMaps`` files.
    :param secrets: every secret the pod reads, by name (from the YAML or the store).
    :param volume_path: a named volume's directory (for ``subPath`` mounts).
    """
    template = workload.template
    metadata = as_mapping(template.get("metadata"), "metadata")
    spec = as_mapping(template.get("spec"), "spec")
    if as_list(spec.get("initContainers"), "initContainers"):
        raise bad("initContainers are not supported by kube play here")
    containers = as_mappings(spec.get("containers"), "containers")
    if not containers:
        raise bad(f"the pod {workload.name!r} has no containers")
    pod = pod_spec(workload.name, template, options)
    annotations = as_strings(metadata.get("annotations"), "metadata.annotations")
    sources = _Sources(workload.name, pod.labels, annotations, config_maps, secrets)
    volumes, host_paths = _volumes(spec, sources)
    policy = as_text(spec.get("restartPolicy"), "restartPolicy") or "Always"
    if policy not in RESTART_POLICIES:
        raise bad(f"invalid restartPolicy {policy!r}: Always, OnFailure or Never")
    names = [as_text(c.get("name"), "container name") for c in containers]
    plans = []
    for name, container in zip(names, containers, strict=True):
        if not name:
            raise bad(f"a container of the pod {workload.name!r} has no name")
        if names.count(name) > 1:
            raise bad(f"the pod {workload.name!r} is invalid; duplicate container name {name!r}")
        plans.append(
            _container_plan(
                container,
                name,
                spec=spec,
                pod=pod,
                sources=sources,
                annotations=_annotations(annotations, name, set(names) - {name}),
                restart=RESTART_POLICIES[policy],
                mounts=_mounts(container, volumes, volume_path),
            )
        )
    files = {v.files.name: v.files for v in volumes.values() if v.files is not None}
    return PodPlan(pod, tuple(plans), tuple(files.values()), tuple(host_paths))


def _container_plan(
    container: Mapping[str, Any],
    name: str,
    *,
    spec: Mapping[str, Any],
    pod: PodSpec,
    sources: _Sources,
    annotations: Mapping[str, str],
    restart: str,
    mounts: tuple[MountSpec, ...],
) -> ContainerPlan:
    """One container (``kube.ToSpecGen``): named ``<pod>-<name>``, the pod's labels."""
    image = as_text(container.get("image"), "image")
    if not image:
        raise bad(f"container {name!r} is missing the required 'image' field")
    pull = as_text(container.get("imagePullPolicy"), "imagePullPolicy") or "IfNotPresent"
    if pull not in PULL_POLICIES:
        raise bad(f"invalid imagePullPolicy {pull!r}: Always, IfNotPresent or Never")
    grace = spec.get("terminationGracePeriodSeconds")
    command = as_list(container.get("command"), "command")
    args = as_list(container.get("args"), "args")
    context = as_mapping(container.get("securityContext"), "securityContext")
    capabilities = as_mapping(context.get("capabilities"), "capabilities")
    return ContainerPlan(
        ContainerSpec(
            image=image,
            name=f"{pod.name}-{name}",
            entrypoint=tuple(str(c) for c in command) if command else None,
            command=tuple(str(a) for a in args) if args else None,
            env=_env(container, sources),
            working_dir=as_text(container.get("workingDir"), "workingDir") or None,
            user=_user(container, spec),
            tty=container.get("tty") is True,
            open_stdin=container.get("stdin") is True,
            labels=dict(pod.labels),
            annotations=annotations,
            mounts=mounts,
            privileged=context.get("privileged") is True,
            readonly_rootfs=context.get("readOnlyRootFilesystem") is True,
            cap_add=tuple(
                as_text(c, "capabilities.add") for c in as_list(capabilities.get("add"), "add")
            ),
            cap_drop=tuple(
                as_text(c, "capabilities.drop") for c in as_list(capabilities.get("drop"), "drop")
            ),
            resources=_resources(container),
            restart_policy=RestartPolicy(restart),
            # newer Podman: the grace period is the stop timeout (4.3.1 ignores it).
            stop_timeout=as_int(grace, "terminationGracePeriodSeconds")
            if grace is not None
            else None,
            pod_name=pod.name,
        ),
        PULL_POLICIES[pull],
    )
