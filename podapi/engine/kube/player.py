"""``kube play`` and ``kube down``: the use case behind ``/libpod/kube/play``.

:class:`KubePlayer` reads the YAML (:mod:`podapi.engine.kube.documents`;
:mod:`podapi.engine.kube.play` maps it to the engine's specs), checks everything it
can first (kinds, names in use, images, which it pulls when missing), then creates
through the same services the API uses: the kube network, Secrets, volumes, then each
pod and its containers; and starts the pods.

Nothing is left half-made: when a step fails, what this play made is removed again
(pods with their containers and emptyDir volumes, volumes, secrets, the network) and
the error is the answer (Podman 4.3.1 answers 500 and leaves the empty pod of a
failed play).  ``kube down`` stops every pod at once (each pod stops its containers in
parallel), removes them, their emptyDir volumes, the YAML's Secrets and the kube
network once nothing uses it; named volumes stay unless ``force``.
"""

import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from attrs import define, evolve, field, frozen
from twisted.internet.defer import ensureDeferred, gatherResults

from podapi.engine.containers import ContainerService
from podapi.engine.distribution import Distribution
from podapi.engine.kube.documents import (
    KubeBundle,
    bad,
    config_map_data,
    parse_documents,
    pod_names,
    read_bundle,
    referenced_secrets,
    secret_from_payload,
    secret_payload,
    volume_names,
)
from podapi.engine.kube.play import KUBE_NETWORK, PlayOptions, PodPlan, VolumeFiles, plan_pod
from podapi.engine.networks import NetworkService
from podapi.engine.podfilters import PodView
from podapi.engine.pods import PodReport, PodService
from podapi.engine.secrets import SecretService
from podapi.engine.shield import shielded
from podapi.engine.shortnames import ShortNames
from podapi.engine.state.pods import NoSuchPod
from podapi.engine.volumes import VolumeService
from podapi.errors import Conflict, NotFound, NotModified, PodapiError
from podapi.storage.registry.errors import RegistryError, RegistryUnauthorized
from podapi.threads import Blocking

T = TypeVar("T")
#: The label that marks a played Secret ``immutable: true`` (Podman keeps it as metadata).
IMMUTABLE = "immutable"
DEFAULT_OPTIONS = PlayOptions()


@frozen
class PlayedPod:
    """Podman's ``PlayKubePod``: a pod the play made, its containers, start errors."""

    id: str
    containers: tuple[str, ...]
    container_errors: tuple[str, ...] = ()


@frozen
class PlayReport:
    """Podman's ``PlayKubeReport`` of a play: pods, volumes made, secrets stored (IDs)."""

    pods: tuple[PlayedPod, ...] = ()
    volumes: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()


@frozen
class DownReport:
    """Podman's ``PlayKubeTeardown``: the pods stopped and removed (``(id, error)``)."""

    stopped: tuple[PodReport, ...] = ()
    removed: tuple[tuple[str, str], ...] = ()


@define
class _Made:
    """What one play created so far, for the roll-back."""

    pods: list[str] = field(factory=list)
    volumes: list[str] = field(factory=list)
    secrets: list[str] = field(factory=list)
    network: bool = False


def _write_files(directory: str, files: Mapping[str, bytes]) -> None:
    """A ConfigMap or Secret volume's files (``playKubePod`` writes them the same way)."""
    for name, data in files.items():
        path = os.path.join(directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def _make_host_path(path: str, directory: bool) -> None:
    """``DirectoryOrCreate`` (0755) and ``FileOrCreate`` (0644), as ``VolumeFromHostPath``."""
    if directory:
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif not os.path.exists(path):
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o644))


def _read_files(paths: Sequence[str]) -> list[bytes]:
    found = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                found.append(f.read())
        except OSError as e:
            raise NotFound(f"configmap file {path}: {e.strerror}") from None
    return found


async def _together(items: Sequence[T], action: Callable[[T], Awaitable[Any]]) -> list[Any]:
    """``action`` on every item at once (pods stop and go in parallel)."""
    return list(await gatherResults([ensureDeferred(action(i)) for i in items]))  # type: ignore[arg-type]


class KubePlayer:
    """``kube play`` / ``kube down`` over the engine's services."""

    def __init__(
        self,
        *,
        pods: PodService,
        containers: ContainerService,
        volumes: VolumeService,
        secrets: SecretService,
        networks: NetworkService,
        distribution: Distribution,
        io: Blocking,
    ) -> None:
        self._pods = pods
        self._containers = containers
        self._volumes = volumes
        self._secrets = secrets
        self._networks = networks
        self._distribution = distribution
        self._io = io

    # --- play -----------------------------------------------------------------------

    async def play(
        self,
        raw: bytes,
        options: PlayOptions = DEFAULT_OPTIONS,
        *,
        config_map_files: Sequence[str] = (),
        start: bool = True,
        replace: bool = False,
        tls_verify: bool | None = None,
    ) -> PlayReport:
        """Create (and start) what the YAML ``raw`` describes.

        :param config_map_files: ConfigMap YAML files on the server (``configMaps``).
        :param replace: ``kube down`` the same YAML first.
        :raises InvalidArgument: not YAML, a kind we do not play, a bad field.
        :raises Conflict: a pod or container name in use (without ``replace``).
        :raises NotFound: an image that is not there and cannot be pulled.
        """
        bundle = read_bundle(parse_documents(raw))
        if not (bundle.workloads or bundle.claims or bundle.secrets):
            raise bad(
                "ConfigMaps in podman are not a standalone object and must be used in a container"
                if bundle.config_maps
                else "YAML document does not contain any supported kube kind"
            )
        config_maps = dict(bundle.config_maps)
        for path, text in zip(
            config_map_files, await self._io(_read_files, config_map_files), strict=True
        ):
            name, data = config_map_data(self._config_map_document(path, text))
            if name in config_maps:
                raise bad(
                    f"ambiguous configuration: the same config map {name} is present in YAML "
                    f"and in --configmaps {path} file"
                )
            config_maps[name] = data
        secrets = await self._secret_data(bundle)
        plans = [
            plan_pod(
                w,
                options=options,
                config_maps=config_maps,
                secrets=secrets,
                volume_path=self._volumes.mountpoint,
            )
            for w in bundle.workloads
        ]
        if replace:
            await self._down(bundle, force=False, missing_ok=True)
        await self._check_names(plans)
        images = {(c.spec.image, c.pull_policy): None for p in plans for c in p.containers}
        for image, policy in images:
            await self._pull(image, policy, tls_verify)
        made = _Made()
        try:
            report = await self._create(bundle, plans, made)
        except BaseException:
            # Runs to its end even when the client hung up (Klein cancels the handler).
            await shielded(self._roll_back(made))
            raise
        if not start:
            return report
        started = await _together(report.pods, self._start)
        return evolve(report, pods=tuple(started))

    @staticmethod
    def _config_map_document(path: str, text: bytes) -> Mapping[str, Any]:
        documents = parse_documents(text)
        if len(documents) != 1 or documents[0].get("kind") != "ConfigMap":
            raise bad(
                f"{path}: invalid YAML kind: [ConfigMap] is the only supported by --configmap"
            )
        return documents[0]

    async def _secret_data(self, bundle: KubeBundle) -> dict[str, Mapping[str, bytes]]:
        """The YAML's Secrets, and the stored ones the workloads read besides."""
        found: dict[str, Mapping[str, bytes]] = {s.name: s.data for s in bundle.secrets}
        for name in referenced_secrets(bundle) - set(found):
            try:
                _, payload = await self._secrets.reveal(name)
            except NotFound:
                continue  # the plan says whether it was optional
            found[name] = secret_from_payload(name, payload)
        return found

    async def _check_names(self, plans: Sequence[PodPlan]) -> None:
        pods = {view.record.name for view in await self._pods.select({})}
        containers = {record.name for record in await self._containers.all()}
        for plan in plans:
            if plan.spec.name in pods:
                raise Conflict(
                    f'adding pod to state: name "{plan.spec.name}" is in use: pod already '
                    "exists (use replace to play it again)",
                    cause="pod already exists",
                )
            for container in plan.containers:
                if container.spec.name in containers:
                    raise Conflict(
                        f'the container name "{container.spec.name}" is already in use: '
                        "container already exists",
                        cause="container already exists",
                    )

    async def _pull(self, image: str, policy: str, tls_verify: bool | None) -> None:
        """The image, pulled when missing (``imagePullPolicy``); 404 when it cannot be had."""
        try:
            await self._distribution.pull(
                image, short_names=ShortNames.PODMAN, policy=policy, tls_verify=tls_verify
            )
        except (NotFound, RegistryUnauthorized):
            raise
        except RegistryError as e:
            raise NotFound(f"image {image} cannot be pulled: {e}", cause="no such image") from e

    async def _create(
        self, bundle: KubeBundle, plans: Sequence[PodPlan], made: _Made
    ) -> PlayReport:
        if any(e.name == KUBE_NETWORK for p in plans for e in p.spec.networks):
            try:
                await self._networks.get(KUBE_NETWORK)
            except NotFound:
                await self._networks.create(KUBE_NETWORK, dns=True)
                made.network = True
        secret_ids = []
        for secret in bundle.secrets:
            existed = await self._secrets.find(secret.name)
            if existed is not None and existed.labels.get(IMMUTABLE) == "true":
                raise Conflict(
                    f"secret {secret.name}: cannot remove colliding secret as it is set to "
                    "immutable"
                )
            record = await self._secrets.create(
                secret.name,
                secret_payload(secret.data),
                labels={IMMUTABLE: "true"} if secret.immutable else None,
                replace=existed is not None,
            )
            if existed is None:
                made.secrets.append(secret.name)
            secret_ids.append(record.id)
        for claim in bundle.claims:
            if await self._volumes.find(claim.name) is None:
                await self._volumes.create(
                    claim.name, driver=claim.driver, labels=claim.labels, options=claim.options
                )
                made.volumes.append(claim.name)
        pods = []
        for plan in plans:
            for files in plan.volume_files:
                await self._fill(files, made)
            for path in plan.host_paths:
                await self._io(_make_host_path, path.path, path.directory)
            pod = await self._pods.create(plan.spec)
            made.pods.append(pod.id)
            ids = []
            for container in plan.containers:
                created = await self._containers.create(
                    evolve(container.spec, pod=pod.id), short_names=ShortNames.PODMAN
                )
                ids.append(created.id)
            pods.append(PlayedPod(pod.id, tuple(ids)))
        return PlayReport(tuple(pods), tuple(c.name for c in bundle.claims), tuple(secret_ids))

    async def _fill(self, files: VolumeFiles, made: _Made) -> None:
        """The volume of a ConfigMap or Secret (reused when it exists, as Podman)."""
        if await self._volumes.find(files.name) is None:
            await self._volumes.create(files.name)
            made.volumes.append(files.name)
        await self._io(_write_files, self._volumes.mountpoint(files.name), files.files)

    async def _start(self, pod: PlayedPod) -> PlayedPod:
        try:
            report = await self._pods.start(pod.id)
        except NotModified:
            return pod
        return evolve(pod, container_errors=report.errors)

    async def _roll_back(self, made: _Made) -> None:
        """Remove what a failed play made (errors of the clean-up are not the answer)."""
        for pod_id in made.pods:
            with contextlib.suppress(PodapiError):
                await self._remove_pod(await self._pods.view(pod_id))
        await self._volumes.remove_unused(made.volumes)
        for name in made.secrets:
            with contextlib.suppress(PodapiError):
                await self._secrets.remove(name)
        if made.network:
            await self._drop_network()

    # --- down -----------------------------------------------------------------------

    async def down(self, raw: bytes, *, force: bool = False) -> DownReport:
        """``kube down``: the pods the YAML makes (404 when one is not there), their
        emptyDir volumes, its Secrets, the kube network once unused; with ``force`` its
        named volumes too."""
        return await self._down(read_bundle(parse_documents(raw)), force=force)

    async def _down(
        self, bundle: KubeBundle, *, force: bool, missing_ok: bool = False
    ) -> DownReport:
        views = []
        for name in pod_names(bundle):
            try:
                views.append(await self._pods.view(name))
            except NoSuchPod:
                if not missing_ok:
                    raise
        stopped = await _together(views, self._stop)
        removed = await _together(views, self._remove_pod)
        for secret in bundle.secrets:
            with contextlib.suppress(NotFound, Conflict):
                await self._secrets.remove(secret.name)
        if any(KUBE_NETWORK in view.networks for view in views):
            await self._drop_network()
        if force:
            for name in volume_names(bundle):
                with contextlib.suppress(NotFound, Conflict):
                    await self._volumes.remove(name)
        return DownReport(tuple(stopped), tuple(removed))

    async def _stop(self, view: PodView) -> PodReport:
        try:
            return await self._pods.stop(view.record.id)
        except NotModified:
            return PodReport(view.record.id)
        except PodapiError as e:
            return PodReport(view.record.id, (str(e),))

    async def _remove_pod(self, view: PodView) -> tuple[str, str]:
        """The pod with its containers, then their emptyDir (anonymous) volumes."""
        names = {m.name for c in view.containers for m in c.run.mounts if m.type == "volume"}
        anonymous = []
        for name in names:
            volume = await self._volumes.find(name)
            if volume is not None and volume.anonymous:
                anonymous.append(name)
        try:
            pod_id = await self._pods.remove(view.record.id, force=True)
        except PodapiError as e:
            return view.record.id, str(e)
        await self._volumes.remove_unused(anonymous)
        return pod_id, ""

    async def _drop_network(self) -> None:
        with contextlib.suppress(NotFound, Conflict):
            network = await self._networks.get(KUBE_NETWORK)
            if not await self._networks.users(network):
                await self._networks.remove(KUBE_NETWORK)
