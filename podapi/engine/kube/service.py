"""``kube generate``: the documents for names of containers, pods and volumes.

:meth:`KubeGenerator.generate` answers a list of documents (dicts) in Podman's order
(helm's install order: PersistentVolumeClaims, Services, then Pods or Deployments);
the HTTP layer dumps them as YAML.

Pods plug in through ``find_pod``: a coroutine that answers the
:class:`~podapi.engine.kube.generate.PodDescription` of a pod by name or ID (its
containers described with :meth:`ContainerDescriber.describe`, infra left out), or None
when there is no such pod.  Each pod is one Pod document (and one Service), as in
Podman; the containers named alone make one more pod together.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from attrs import evolve, frozen

from podapi.engine.containers import ContainerService
from podapi.engine.kube.describe import ContainerDescriber
from podapi.engine.kube.generate import (
    KubeContainer,
    KubePort,
    PodDescription,
    deployment_document,
    kube_name,
    pod_document,
    pod_of_containers,
    pvc_document,
    service_document,
)
from podapi.engine.pods import PodService
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.volumes import VolumeService
from podapi.errors import InvalidArgument, NotFound

KINDS = ("pod", "deployment")

FindPod = Callable[[str], Awaitable[PodDescription | None]]


@frozen
class GenerateOptions:
    """What ``kube generate`` is asked: a Service too, Pod or Deployment, replicas."""

    service: bool = False
    kind: str = "pod"
    replicas: int = 1


class KubeGenerator:
    """``GET /libpod/kube/generate``'s use case."""

    def __init__(
        self,
        containers: ContainerService,
        volumes: VolumeService,
        describer: ContainerDescriber,
        find_pod: FindPod | None = None,
    ) -> None:
        self._containers = containers
        self._volumes = volumes
        self._describer = describer
        self._find_pod = find_pod

    async def generate(
        self, names: Sequence[str], options: GenerateOptions = GenerateOptions()
    ) -> list[dict[str, Any]]:
        """The documents for ``names`` (containers, volumes; pods once ``find_pod`` is set).

        :raises InvalidArgument: no names, an unknown ``kind``, negative replicas.
        :raises NotFound: a name that is none of these (Podman: ``name or ID "x" not found``).
        """
        if not names:
            raise InvalidArgument("must provide the name or ID of one container or pod")
        if options.kind not in KINDS:
            raise InvalidArgument(
                f"invalid type {options.kind!r}: must be one of {', '.join(KINDS)}"
            )
        if options.replicas < 0:
            raise InvalidArgument("replicas must not be negative")
        records: list[ContainerRecord] = []
        pods: list[PodDescription] = []
        claims: list[dict[str, Any]] = []
        for name in names:
            try:
                record = await self._containers.resolve(name)
            except NotFound:
                pass
            else:
                if all(r.id != record.id for r in records):
                    records.append(record)
                continue
            if self._find_pod is not None:
                pod = await self._find_pod(name)
                if pod is not None:
                    pods.append(pod)
                    continue
            volume = await self._volumes.find(name)
            if volume is not None:
                claims.append(
                    pvc_document(volume.name, volume.driver, volume.labels, volume.options)
                )
                continue
            raise NotFound(f'name or ID "{name}" not found', cause="no such object")
        if records:
            described = [await self._describer.describe(r) for r in records]
            pods.append(pod_of_containers(described))
        pod_docs = [pod_document(pod) for pod in pods]
        services = [service_document(doc) for doc in pod_docs] if options.service else []
        if options.kind == "deployment":
            pod_docs = [deployment_document(doc, options.replicas) for doc in pod_docs]
        return [*claims, *services, *pod_docs]


async def describe_pod(
    pods: PodService, describer: ContainerDescriber, name: str
) -> PodDescription | None:
    """The pod ``name`` (name or ID) as one Pod document shows it, or None if there is none.

    Its containers keep their own names, less a ``<pod>-`` prefix (``kube play`` names
    a pod's containers ``<pod>-<name>``, as Podman, so generate -> play -> generate is a
    fixed point; Podman 4.3.1 writes ``<pod>-<name>`` and the next play makes
    ``<pod>-<pod>-<name>``); the infra container is left out, and the ports
    it publishes for the pod go on the first container (where Kubernetes declares them).

    :raises InvalidArgument: the pod has no container besides infra (Kubernetes needs one).
    """
    try:
        view = await pods.view(name)
    except NotFound:
        return None
    infra_ports: tuple[KubePort, ...] = ()
    members: list[KubeContainer] = []
    prefix = f"{view.record.name}-"
    for record in view.containers:
        described = await describer.describe(record)
        if record.id == view.record.infra_id:
            infra_ports = described.ports
        elif record.name.startswith(prefix) and len(record.name) > len(prefix):
            # kube play named it <pod>-<name>: the YAML says <name> again.
            members.append(evolve(described, name=kube_name(record.name.removeprefix(prefix))))
        else:
            members.append(described)
    if not members:
        raise InvalidArgument(f"pod {view.record.name} has no containers to generate")
    members[0] = evolve(members[0], ports=(*infra_ports, *members[0].ports))
    spec = view.record.spec
    return PodDescription(
        name=view.record.name,
        containers=tuple(members),
        labels=dict(spec.labels),
        hostname=spec.hostname,
        host_network=spec.network_mode == "host",
        share_pid="pid" in spec.share,
    )
