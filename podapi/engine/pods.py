"""Pods: a group of containers that share namespaces through an infra container.

As Podman (``libpod/pod*.go``): a pod is its options and, unless ``no_infra``,
an infra container (``/catatonit -P`` from the locally made pause image,
:mod:`podapi.engine.infraimage`) that holds the shared namespaces (``--share``,
by default ipc, net and uts), the published ports and the networks.  The
containers that join (``pod`` in a SpecGenerator) enter its namespaces as
``container:<infra>`` modes.  A pod's status is derived from its containers'
states (:func:`podapi.engine.podspec.pod_status`).

Where we differ from Podman 4.3.1 on purpose:

- ``stop`` (and a forced ``rm``) stops the containers *in parallel*, then the
  infra container: 4.3.1 waits the whole timeout once per container that
  ignores SIGTERM.
- ``stop`` of a Degraded pod stops its running containers; 4.3.1 answers 304
  to any pod that is not Running.
"""

import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Literal

from attrs import evolve, frozen
from twisted.internet.defer import ensureDeferred, gatherResults

from podapi.engine.cgroupplace import check_parent, pod_cgroup, pod_leftovers, remove_empty
from podapi.engine.containers import ContainerService
from podapi.engine.containerspec import ContainerSpec, check_name, signal_number
from podapi.engine.events import EventBus
from podapi.engine.infraimage import PauseImage
from podapi.engine.lifecycle import Lifecycle
from podapi.engine.naming import generate_name
from podapi.engine.podfilters import PodView, pod_matcher
from podapi.engine.podspec import RUNNING, PodSpec, check_share
from podapi.engine.shortnames import ShortNames
from podapi.engine.state import pods as rows
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.state.database import State
from podapi.engine.state.pods import NoSuchPod, PodRecord
from podapi.engine.stats import ContainerStats, StatsReader
from podapi.engine.top import ContainerTop, TopTable
from podapi.errors import Conflict, NotModified, PodapiError
from podapi.oci.cgroups import CGROUP_ROOT
from podapi.threads import Blocking

Action = Callable[[ContainerRecord], Awaitable[object]]


@frozen
class PodReport:
    """Podman's ``{"Errs": [...], "Id"}`` reports of start, stop, kill, pause..."""

    id: str
    errors: tuple[str, ...] = ()


@frozen
class PodStats:
    """One container's stats in a pod (Podman's ``PodStatsReport`` row)."""

    pod: PodRecord
    stats: ContainerStats


class PodService:
    """Pods: records, their infra containers and what is done to all their containers.

    :param state: the state database.
    :param containers: container records (create, lookup).
    :param lifecycle: gives the lifecycle (start, stop, remove) once the engine runs.
    :param events: where pod events go.
    :param pause_image: finds or makes the infra containers' image.
    :param stats: samples containers' usage.
    :param top: gives the ``ps`` runner once the engine runs.
    :param io: the blocking-work executor (the pod's cgroup is removed there).
    :param cgroup_root: where the cgroup hierarchies are mounted (tests pass a directory).
    """

    def __init__(
        self,
        *,
        state: State,
        containers: ContainerService,
        lifecycle: Callable[[], Lifecycle],
        events: EventBus,
        pause_image: PauseImage,
        stats: StatsReader,
        top: Callable[[], ContainerTop],
        io: Blocking,
        cgroup_root: str = CGROUP_ROOT,
    ) -> None:
        self._state = state
        self._containers = containers
        self._lifecycle = lifecycle
        self._events = events
        self._pause = pause_image
        self._stats = stats
        self._top = top
        self._io = io
        self._cgroup_root = cgroup_root

    def _emit(self, pod: PodRecord, action: str) -> None:
        self._events.emit("pod", action, pod.id, name=pod.name)

    # --- queries --------------------------------------------------------------------

    async def resolve(self, text: str) -> PodRecord:
        """A pod by name, full ID or unique ID prefix; 404 otherwise."""
        found = await self._state.read(partial(rows.resolve, text=text))
        if found is None:
            raise NoSuchPod(f"no pod with name or ID {text} found: no such pod")
        return found

    async def view(self, text: str) -> PodView:
        """A pod (by name or ID) with its containers."""
        return await self._view(await self.resolve(text))

    async def _view(self, pod: PodRecord) -> PodView:
        members = [c for c in await self._containers.all() if c.spec.pod == pod.id]
        members.sort(key=lambda c: (c.id != pod.infra_id, c.created))
        return PodView(pod, tuple(members))

    async def select(self, filters: Mapping[str, Sequence[str]]) -> list[PodView]:
        """``pod ps``: the pods ``filters`` select (400 for an unknown key)."""
        matches = pod_matcher(filters, self._events.now_ns())
        pods = await self._state.read(rows.load_all)
        everything = await self._containers.all()
        views = []
        for pod in pods:
            members = sorted(
                (c for c in everything if c.spec.pod == pod.id),
                key=lambda c: (c.id != pod.infra_id, c.created),
            )
            view = PodView(pod, tuple(members))
            if matches(view):
                views.append(view)
        return views

    # --- create ---------------------------------------------------------------------

    async def create(self, spec: PodSpec) -> PodRecord:
        """``pod create``: the pod and its infra container (409 when the name is taken)."""
        spec = evolve(
            spec, share=check_share(spec.share), cgroup_parent=check_parent(spec.cgroup_parent)
        )
        name = check_name(spec.name) if spec.name else ""
        record = PodRecord(
            id=secrets.token_hex(32), name=name, created=self._containers.now(), spec=spec
        )
        record = await self._state.write(
            partial(rows.insert, record=record, name_for=None if name else generate_name)
        )
        if not spec.no_infra:
            try:
                infra = await self._create_infra(record)
            except BaseException:
                await self._state.write(partial(rows.delete, pod_id=record.id))
                raise
            await self._state.write(partial(rows.set_infra, pod_id=record.id, infra_id=infra.id))
            record = evolve(record, infra_id=infra.id)
        self._emit(record, "create")
        return record

    async def _create_infra(self, pod: PodRecord) -> ContainerRecord:
        image = await self._pause.get()  # its name: shown as Podman shows it
        spec = pod.spec
        shared = spec.share
        infra = ContainerSpec(
            image=image,
            name=f"{pod.id[:12]}-infra",
            hostname=(spec.hostname or pod.name) if "uts" in shared else None,
            network_mode=spec.network_mode if "net" in shared else "bridge",
            networks=spec.networks if "net" in shared else (),
            ports=spec.ports if "net" in shared else (),
            dns=spec.dns,
            dns_search=spec.dns_search,
            dns_options=spec.dns_options,
            extra_hosts=spec.extra_hosts,
            stop_timeout=10,
            image_volume_mode="ignore",
            cgroup_parent=pod_cgroup(pod),
            pod=pod.id,
            pod_name=pod.name,
            infra=True,
        )
        return await self._containers.create(infra, short_names=ShortNames.PODMAN)

    # --- running --------------------------------------------------------------------

    async def _each(self, records: Sequence[ContainerRecord], action: Action) -> list[str]:
        """Run ``action`` on every record at once; the errors, as Podman words them."""
        results = await gatherResults([ensureDeferred(_attempt(action, r)) for r in records])
        return [error for error in results if error]

    async def start(self, text: str) -> PodReport:
        """``pod start``: infra first, then the others; 304 when the pod is Running."""
        view = await self.view(text)
        if view.status == RUNNING:
            raise NotModified(f"pod {view.record.id} is already running")
        lifecycle = self._lifecycle()
        errors: list[str] = []
        infra = view.infra
        if infra is not None and not infra.alive:
            errors += await self._each([infra], lifecycle.start)
        others = [c for c in view.containers if c is not infra and not c.alive]
        if not errors:
            errors += await self._each(others, lifecycle.start)
        self._emit(view.record, "start")
        return PodReport(view.record.id, tuple(f"starting container {e}" for e in errors))

    async def _stop_all(self, view: PodView, timeout: int | None) -> list[str]:
        lifecycle = self._lifecycle()

        async def stop(record: ContainerRecord) -> object:
            return await lifecycle.stop(await self._containers.get(record.id), timeout)

        infra = view.infra
        others = [c for c in view.containers if c is not infra and c.alive]
        errors = await self._each(others, stop)
        if infra is not None and infra.alive:
            errors += await self._each([infra], stop)
        return errors

    async def stop(self, text: str, timeout: int | None = None) -> PodReport:
        """``pod stop``: the containers in parallel, then infra; 304 when none runs."""
        view = await self.view(text)
        if not any(c.alive for c in view.containers):
            raise NotModified(f"pod {view.record.id} is not running")
        errors = await self._stop_all(view, timeout)
        self._emit(view.record, "stop")
        return PodReport(view.record.id, tuple(f"stopping container {e}" for e in errors))

    async def restart(self, text: str) -> PodReport:
        """``pod restart``: stop what runs, then start everything."""
        view = await self.view(text)
        errors = await self._stop_all(view, None)
        if not errors:
            view = await self._view(view.record)
            lifecycle = self._lifecycle()
            infra = view.infra
            if infra is not None:
                errors += await self._each([infra], lifecycle.start)
            others = [c for c in view.containers if c is not infra]
            if not errors:
                errors += await self._each(others, lifecycle.start)
        self._emit(view.record, "restart")
        return PodReport(view.record.id, tuple(f"restarting container {e}" for e in errors))

    async def kill(self, text: str, signal: str = "SIGKILL") -> PodReport:
        """``pod kill``: 409 when no container of the pod runs."""
        number = signal_number(signal)
        view = await self.view(text)
        running = [c for c in view.containers if c.state == "running"]
        if not running:
            raise Conflict(
                f"cannot kill a pod with no running containers: {view.record.id}",
                cause="container state improper",
            )
        lifecycle = self._lifecycle()
        errors = await self._each(running, lambda r: lifecycle.kill(r, number))
        self._emit(view.record, "kill")
        return PodReport(view.record.id, tuple(errors))

    async def pause(self, text: str) -> PodReport:
        """``pod pause``: every running container."""
        return await self._freeze(text, "pause")

    async def unpause(self, text: str) -> PodReport:
        """``pod unpause``: every paused container."""
        return await self._freeze(text, "unpause")

    async def _freeze(self, text: str, action: Literal["pause", "unpause"]) -> PodReport:
        view = await self.view(text)
        lifecycle = self._lifecycle()
        step, acts_on = (
            (lifecycle.pause, "running") if action == "pause" else (lifecycle.unpause, "paused")
        )
        errors = await self._each([c for c in view.containers if c.state == acts_on], step)
        self._emit(view.record, action)
        # "pausing container ..." / "unpausing container ...", Podman's error prefixes.
        return PodReport(view.record.id, tuple(f"{action[:-1]}ing container {e}" for e in errors))

    # --- remove ---------------------------------------------------------------------

    async def remove(self, text: str, *, force: bool = False, timeout: int | None = None) -> str:
        """``pod rm``: the pod and its containers (others in parallel, then infra); 409
        with running containers unless ``force``.  Returns the pod's ID."""
        view = await self.view(text)
        return await self._remove(view, force=force, timeout=timeout)

    async def _remove(self, view: PodView, *, force: bool, timeout: int | None) -> str:
        pod = view.record
        alive = [c for c in view.containers if c.alive]
        # Podman's removePod: a pod holding nothing but its infra container goes
        # unconditionally (the "pause" container is no work of the user's).
        only_infra = [c.id for c in view.containers] == [pod.infra_id]
        if alive and not force and not only_infra:
            raise Conflict(
                f"pod {pod.id} has containers that are not ready to be removed: cannot "
                f"remove container {alive[0].id} as it is {alive[0].state} - running or "
                "paused containers cannot be removed without force: container state improper",
                cause="container state improper",
            )
        if alive:
            await self._stop_all(view, timeout)
        lifecycle = self._lifecycle()

        async def remove(record: ContainerRecord) -> None:
            current = await self._containers.get(record.id)
            await lifecycle.remove(current, force=True, stop_timeout=timeout, with_pod=True)

        infra = view.infra
        errors = await self._each([c for c in view.containers if c is not infra], remove)
        if infra is not None and not errors:
            errors += await self._each([infra], remove)
        if errors:
            raise Conflict(f"removing pod {pod.id} containers: {'; '.join(errors)}")
        await self._state.write(partial(rows.delete, pod_id=pod.id))
        # Its containers' cgroups are gone: the pod's own goes with the pod.
        await self._io(remove_empty, pod_leftovers(pod), self._cgroup_root)
        self._emit(pod, "remove")
        return pod.id

    async def prune(self) -> list[tuple[str, str]]:
        """``pod prune``: every pod with no running container; ``(id, error)`` each."""
        done = []
        for view in await self.select({}):
            if any(c.alive for c in view.containers):
                continue
            try:
                done.append((await self._remove(view, force=False, timeout=None), ""))
            except PodapiError as e:
                done.append((view.record.id, str(e)))
        return done

    # --- top and stats ----------------------------------------------------------------

    async def top(self, text: str, ps_args: str = "") -> TopTable:
        """``pod top``: ``ps`` rows of every running container of the pod (409 if none)."""
        view = await self.view(text)
        running = [c for c in view.containers if c.alive]
        if not running:
            raise Conflict(f"pod {view.record.id} is not running", cause="container state improper")
        top = self._top()
        tables = [await top.table(c, ps_args, libpod=True) for c in running]
        return TopTable(tables[0].titles, [row for t in tables for row in t.processes])

    async def stats(
        self,
        names: Sequence[str],
        *,
        all: bool = False,
        previous: Mapping[str, ContainerStats] | None = None,
    ) -> list[PodStats]:
        """``pod stats``: a row per container of the named pods (every pod when none named).

        :param previous: the last rows of a stream, by container ID: a container's CPU
            is then over the time since its last row.  Without one, the CPU is over the
            time since the container started, as Podman's (``GetPodStats(nil)``), which
            keeps it so in its streams too: there we differ, as its container stats do.
        """
        earlier = previous or {}
        if names:
            try:
                views = [await self.view(n) for n in names]
            except NoSuchPod as e:
                raise NoSuchPod(f"unable to get list of pods: {e}") from None
        else:
            views = await self.select({})
        found = []
        for view in views:
            for record in (c for c in view.containers if c.alive):
                sample = await self._stats.sample(record)
                stats = ContainerStats.of(sample, earlier.get(record.id))
                found.append(PodStats(view.record, stats))
        return found


async def _attempt(action: Action, record: ContainerRecord) -> str:
    """``action(record)``; "" or ``"<id>: <why>"`` (a no-op, 304, is no error)."""
    try:
        await action(record)
    except NotModified:
        return ""
    except PodapiError as e:
        return f"{record.id}: {e.args[0] if e.args else e}"
    return ""
