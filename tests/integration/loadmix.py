"""Many clients doing mixed work against one server at once, and what must hold afterwards.

Shared by ``bench/load.py`` (64 clients for minutes, with RSS, fd and latency
figures) and ``tests/integration/test_load_mix.py`` (a bounded run in the suite).

Each client owns what it makes (containers, volumes, one pulled image tag) and
picks random operations on it: create, start, stop, logs, exec, inspect, remove
(containers); pull and remove of its own tag from a loopback registry; create
and remove of volumes; lists of containers, images, networks and volumes; a
bounded window of past events.  Because a client knows the state of everything
it owns, it knows the one status each request must get: a 4xx is expected only
where Docker gives one (stop of a stopped container 304, exec in one that is
not running 409, inspect of a removed one 404...); anything else is an error.
Its own objects must appear in every list it takes, exactly (nothing lost,
nothing duplicated, nothing removed still there).  Event streams stay open the
whole run; at the end each must have seen exactly the events the successful
operations imply, and the server's lists must match what the clients hold.
"""

import http.client
import json
import random
import re
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrs import define, field

from tests.fixtures.images import BuiltImage, busybox_layer, layer_tar
from tests.fixtures.registry import Registry
from tests.integration.containers_support import IMAGE
from tests.support import EventStream, Reply, ServerProcess, UnixHTTPConnection, request

API = "/v1.41"
#: The image every container runs (loaded before the run).
RUN_IMAGE = f"{IMAGE}:latest"
#: Seconds any one socket operation may take before the request counts as hung.
TIMEOUT = 60.0
#: Containers and volumes a client holds at most (bounds the host's load).
MAX_CONTAINERS = 3
MAX_VOLUMES = 2
#: Distinct images in the registry (clients' tags spread over them, so pulls and
#: removals of the same image race between clients).
VARIANTS = 4
#: The volume whose events close the event streams after the run.
MARKER = "loadmix-end-marker"
#: A container's ``echo`` reaches its log soon after start; how long a logs check waits.
LOG_GRACE = 5.0
#: Lines of the server's log that tell of a failure (unexpected even if no client saw it).
LOGGED_FAILURE = re.compile(r"#(error|critical|failure)\]|Traceback|Unhandled")
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json"
)


def seed_registry(registry: Registry, work: Path, clients: int) -> list[str]:
    """Push ``VARIANTS`` small images and tag one per client; return the clients' references.

    Client ``i`` pulls ``<registry>/load/v<i % VARIANTS>:c<i>``.  The variants share the
    busybox layer and differ by a small layer of their own.
    """
    base = busybox_layer()
    for variant in range(VARIANTS):
        extra = layer_tar({f"variant/{variant}": bytes([variant]) * (256 * 1024)})
        archive = work / f"variant{variant}.tar"
        archive.write_bytes(BuiltImage(layers=[base, extra]).docker_archive())
        registry.push(archive, f"load/v{variant}:1")
    manifests = [_manifest(registry, f"load/v{v}", "1") for v in range(VARIANTS)]
    refs = []
    for index in range(clients):
        variant = index % VARIANTS
        content_type, body = manifests[variant]
        url = f"http://{registry.host}/v2/load/v{variant}/manifests/c{index}"
        put = urllib.request.Request(
            url, data=body, method="PUT", headers={"Content-Type": content_type}
        )
        with urllib.request.urlopen(put, timeout=30) as reply:
            assert reply.status == 201, reply.status
        refs.append(f"{registry.host}/load/v{variant}:c{index}")
    return refs


def _manifest(registry: Registry, repo: str, tag: str) -> tuple[str, bytes]:
    url = f"http://{registry.host}/v2/{repo}/manifests/{tag}"
    get = urllib.request.Request(url, headers={"Accept": MANIFEST_TYPES})
    with urllib.request.urlopen(get, timeout=30) as reply:
        return reply.headers["Content-Type"], reply.read()


@define
class Tally:
    """What all clients saw (shared; every change under ``lock``)."""

    lock: threading.Lock = field(factory=threading.Lock)
    #: Milliseconds per operation name.
    latencies: dict[str, list[float]] = field(factory=dict)
    #: Unexpected statuses, exceptions and wrong answers, one line each.
    errors: list[str] = field(factory=list)
    #: Expected 4xx/304 answers per operation.
    expected_refusals: Counter[str] = field(factory=Counter)
    #: Events the successful operations imply: (type, actor, action) -> count.
    events: Counter[tuple[str, str, str]] = field(factory=Counter)

    @property
    def operations(self) -> int:
        return sum(len(laps) for laps in self.latencies.values())

    def lap(self, op: str, ms: float) -> None:
        with self.lock:
            self.latencies.setdefault(op, []).append(ms)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def refused(self, op: str) -> None:
        with self.lock:
            self.expected_refusals[op] += 1

    def expect(self, kind: str, actor: str, action: str) -> None:
        with self.lock:
            self.events[(kind, actor, action)] += 1


@define
class Owned:
    """A container a client made, and the state it must be in."""

    name: str
    #: ``--rm``: gone (with a ``destroy`` event) soon after its process ends.
    auto_remove: bool = False
    state: str = "created"
    started_at: float = 0.0


class Client:
    """One client: its own keep-alive connection, objects and random choices."""

    def __init__(self, index: int, server: ServerProcess, ref: str, tally: Tally) -> None:
        self.index = index
        self.server = server
        self.sock = str(server.sock)
        self.ref = ref
        self.tally = tally
        self.rng = random.Random(index)
        self.conn = UnixHTTPConnection(self.sock, timeout=TIMEOUT)
        self.containers: dict[str, Owned] = {}
        self.removed: list[str] = []
        self.volumes: set[str] = set()
        self.pulled = False
        #: Names whose create failed in an unknown way (they may or may not exist).
        self.uncertain: set[str] = set()
        self._serial = 0

    def _name(self, kind: str) -> str:
        self._serial += 1
        return f"load{self.index}{kind}{self._serial}"

    # -- requests ----------------------------------------------------------------

    def call(
        self,
        op: str,
        method: str,
        path: str,
        expect: tuple[int, ...],
        body: Any = None,
        refusal: bool = False,
    ) -> Reply | None:
        """One request on the keep-alive connection, timed; ``None`` unless ``expect``-ed.

        :param refusal: the expected status is a refusal (4xx, 304), counted as such.
        """
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        began = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            answer = Reply(response.status, response.headers, response.read())
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()  # a fresh connection for the next request
            self.tally.error(f"{op}: {method} {path}: {type(e).__name__} {e}")
            return None
        finally:
            self.tally.lap(op, (time.perf_counter() - began) * 1000)
        if answer.status not in expect:
            self.tally.error(
                f"{op}: {method} {path}: {answer.status} (expected {expect}) {answer.body[:300]!r}"
            )
            return None
        if refusal:
            self.tally.refused(op)
        return answer

    # -- operations ----------------------------------------------------------------

    def create(self) -> None:
        name = self._name("c")
        network = self.rng.choice(["none", "bridge"])
        auto_remove = self.rng.random() < 0.25
        body = {
            "Image": RUN_IMAGE,
            "Cmd": ["sh", "-c", f"echo {name}; exec sleep 1000"],
            "HostConfig": {"NetworkMode": network, "AutoRemove": auto_remove},
        }
        answer = self.call("create", "POST", f"{API}/containers/create?name={name}", (201,), body)
        if answer is None:
            self.uncertain.add(name)
            return
        container_id = answer.json()["Id"]
        self.containers[container_id] = Owned(name, auto_remove)
        self.tally.expect("container", container_id, "create")

    def start(self, target: str, owned: Owned) -> None:
        path = f"{API}/containers/{target}/start"
        if owned.state == "running":
            self.call("start", "POST", path, (304,), refusal=True)
        elif self.call("start", "POST", path, (204,)) is not None:
            owned.state, owned.started_at = "running", time.monotonic()
            self.tally.expect("container", target, "start")

    def stop(self, target: str, owned: Owned) -> None:
        path = f"{API}/containers/{target}/stop?t={self.rng.choice([0, 0, 1])}"
        if owned.state != "running":
            self.call("stop", "POST", path, (304,), refusal=True)
        elif self.call("stop", "POST", path, (204,)) is not None:
            self._ended(target, owned, "stop")

    def kill(self, target: str, owned: Owned) -> None:
        """SIGKILL, then wait for the exit (Docker's kill returns once the signal is sent)."""
        path = f"{API}/containers/{target}/kill"
        if owned.state != "running":
            self.call("kill", "POST", path, (409,), refusal=True)
            return
        if self.call("kill", "POST", path, (204,)) is None:
            return
        if not owned.auto_remove:
            waited = self.call("kill (wait)", "POST", f"{API}/containers/{target}/wait", (200,))
            if waited is not None and waited.json()["StatusCode"] != 137:
                self.tally.error(f"kill {owned.name}: wait says {waited.body!r}, not 137")
        self._ended(target, owned, "kill")

    def _ended(self, target: str, owned: Owned, op: str) -> None:
        """The process of ``target`` ended: it exited, or (``--rm``) it goes away."""
        self.tally.expect("container", target, "die")
        if not owned.auto_remove:
            owned.state = "exited"
            return
        # Gone already (404) or once the server's clean-up has removed it (200).
        path = f"{API}/containers/{target}/wait?condition=removed"
        if self.call(f"{op} (wait removed)", "POST", path, (200, 404)) is not None:
            self.tally.expect("container", target, "destroy")
        self._forget(target)

    def restart(self, target: str, owned: Owned) -> None:
        path = f"{API}/containers/{target}/restart?t=0"
        if self.call("restart", "POST", path, (204,)) is not None:
            if owned.state == "running":
                self.tally.expect("container", target, "die")
            self.tally.expect("container", target, "start")
            owned.state, owned.started_at = "running", time.monotonic()

    def pause(self, target: str, owned: Owned) -> None:
        """Pause, see it paused, unpause: the container is never left paused."""
        path = f"{API}/containers/{target}"
        if owned.state != "running":
            self.call("pause", "POST", f"{path}/pause", (409,), refusal=True)
            return
        if self.call("pause", "POST", f"{path}/pause", (204,)) is None:
            return
        owned.state = "paused"
        answer = self.call("inspect", "GET", f"{path}/json", (200,))
        if answer is not None and answer.json()["State"]["Status"] != "paused":
            self.tally.error(f"pause {owned.name}: inspect says {answer.json()['State']}")
        if self.call("unpause", "POST", f"{path}/unpause", (204,)) is not None:
            owned.state = "running"

    def remove(self, target: str, owned: Owned) -> None:
        if self.call("rm", "DELETE", f"{API}/containers/{target}?force=1&v=1", (204,)) is None:
            return
        if owned.state == "running":
            self.tally.expect("container", target, "die")
        self.tally.expect("container", target, "destroy")
        self._forget(target)

    def _forget(self, target: str) -> None:
        del self.containers[target]
        self.removed.append(target)

    def logs(self, target: str, owned: Owned) -> None:
        answer = self.call("logs", "GET", f"{API}/containers/{target}/logs?stdout=1", (200,))
        settled = owned.started_at and time.monotonic() - owned.started_at > LOG_GRACE
        if answer is not None and settled and owned.name.encode() not in answer.body:
            self.tally.error(f"logs of {owned.name}: its echo is missing: {answer.body[:200]!r}")

    def follow_logs(self, target: str, owned: Owned) -> None:
        """``logs?follow=1`` of a running container, left after its first frame: the
        server must let go of every follower a client drops."""
        if owned.state != "running":
            return
        conn = UnixHTTPConnection(self.sock, timeout=TIMEOUT)
        began = time.perf_counter()
        try:
            conn.request("GET", f"{API}/containers/{target}/logs?follow=1&stdout=1")
            response = conn.getresponse()
            # The first frame's header (the container's echo is always there to come).
            first = response.read(8) if response.status == 200 else response.read()
        except (OSError, http.client.HTTPException) as e:
            self.tally.error(f"logs follow {owned.name}: {type(e).__name__} {e}")
            return
        finally:
            conn.close()
            self.tally.lap("logs follow", (time.perf_counter() - began) * 1000)
        if response.status != 200 or len(first) != 8:
            self.tally.error(f"logs follow {owned.name}: {response.status} {first[:300]!r}")

    def follow_events(self) -> None:
        """A filtered event stream opened, read for one event at most, dropped."""
        began = time.perf_counter()
        try:
            stream = EventStream(self.server, {"type": ["container"]})
        except (OSError, http.client.HTTPException, AssertionError) as e:
            self.tally.error(f"events follow: {type(e).__name__} {e}")
            return
        try:
            stream.next(timeout=2)
        except AssertionError:
            pass  # a quiet moment (near the end of the run): dropping the stream is the point
        except (OSError, http.client.HTTPException, ValueError) as e:
            self.tally.error(f"events follow: {type(e).__name__} {e}")
        finally:
            stream.close()
            self.tally.lap("events follow", (time.perf_counter() - began) * 1000)

    def exec(self, target: str, owned: Owned) -> None:
        path = f"{API}/containers/{target}/exec"
        if owned.state != "running":
            self.call("exec", "POST", path, (409,), {"Cmd": ["true"]}, refusal=True)
            return
        began = time.perf_counter()
        body = {"Cmd": ["true"], "AttachStdout": True, "AttachStderr": True}
        created = self.call("exec create", "POST", path, (201,), body)
        if created is None:
            return
        exec_id = created.json()["Id"]
        self.tally.expect("container", target, "exec_create")
        try:
            # Not upgraded: the server answers 200 and streams until the process ends.
            started = request(
                self.sock,
                "POST",
                f"{API}/exec/{exec_id}/start",
                json.dumps({"Detach": False, "Tty": False}).encode(),
                {"Content-Type": "application/json"},
                timeout=TIMEOUT,
            )
        except (OSError, http.client.HTTPException) as e:
            self.tally.error(f"exec start {exec_id}: {type(e).__name__} {e}")
            return
        if started.status != 200:
            self.tally.error(f"exec start {exec_id}: {started.status} {started.body[:300]!r}")
            return
        self.tally.expect("container", target, "exec_die")
        inspected = self.call("exec inspect", "GET", f"{API}/exec/{exec_id}/json", (200,))
        if inspected is not None:
            session = inspected.json()
            if session["Running"] or session["ExitCode"] != 0:
                self.tally.error(f"exec {exec_id} after its stream ended: {session}")
        self.tally.lap("exec (round trip)", (time.perf_counter() - began) * 1000)

    def inspect(self) -> None:
        if self.removed and self.rng.random() < 0.3:
            gone = self.rng.choice(self.removed)
            self.call("inspect", "GET", f"{API}/containers/{gone}/json", (404,), refusal=True)
            return
        if not self.containers:
            return
        target = self.rng.choice(list(self.containers))
        answer = self.call("inspect", "GET", f"{API}/containers/{target}/json", (200,))
        if answer is not None and (status := answer.json()["State"]["Status"]) != (
            want := self.containers[target].state
        ):
            self.tally.error(f"inspect {target}: state {status}, should be {want}")

    def pull(self) -> None:
        repository, tag = self.ref.rsplit(":", 1)
        query = urllib.parse.urlencode({"fromImage": repository, "tag": tag})
        answer = self.call("pull", "POST", f"{API}/images/create?{query}", (200,))
        if answer is None:
            return
        failed = [line for line in answer.body.splitlines() if b'"error' in line]
        if failed:
            self.tally.error(f"pull {self.ref}: {failed[:2]!r}")
            return
        self.pulled = True
        self.tally.expect("image", self.ref, "pull")

    def remove_image(self) -> None:
        path = f"{API}/images/{self.ref}"
        if not self.pulled:
            self.call("rmi", "DELETE", path, (404,), refusal=True)
        elif self.call("rmi", "DELETE", path, (200,)) is not None:
            self.pulled = False

    def create_volume(self) -> None:
        name = self._name("v")
        path = f"{API}/volumes/create"
        if self.call("volume create", "POST", path, (201,), {"Name": name}) is not None:
            self.volumes.add(name)
            self.tally.expect("volume", name, "create")

    def remove_volume(self) -> None:
        name = self.rng.choice(sorted(self.volumes))
        if self.call("volume rm", "DELETE", f"{API}/volumes/{name}", (204,)) is not None:
            self.volumes.discard(name)
            self.tally.expect("volume", name, "destroy")

    def list_containers(self) -> None:
        answer = self.call("list containers", "GET", f"{API}/containers/json?all=1", (200,))
        if answer is not None:
            names = [n for c in answer.json() for n in c["Names"]]
            mine = [n[1:] for n in names if n.startswith(f"/load{self.index}c")]
            self._same("containers", mine, [c.name for c in self.containers.values()])

    def list_volumes(self) -> None:
        answer = self.call("list volumes", "GET", f"{API}/volumes", (200,))
        if answer is not None:
            names = [v["Name"] for v in answer.json()["Volumes"] or ()]
            mine = [n for n in names if n.startswith(f"load{self.index}v")]
            self._same("volumes", mine, list(self.volumes))

    def list_images(self) -> None:
        answer = self.call("list images", "GET", f"{API}/images/json", (200,))
        if answer is not None:
            tags = [t for image in answer.json() for t in image["RepoTags"] or ()]
            self._same("images", [t for t in tags if t == self.ref], [self.ref] * self.pulled)

    def list_networks(self) -> None:
        self.call("list networks", "GET", f"{API}/networks", (200,))

    def events_window(self) -> None:
        now = time.time()
        query = urllib.parse.urlencode({"since": f"{now - 5:.3f}", "until": f"{now:.3f}"})
        self.call("events window", "GET", f"{API}/events?{query}", (200,))

    def _same(self, what: str, listed: list[str], held: list[str]) -> None:
        """Own objects in a list: each exactly once, none that was removed."""
        if sorted(listed) != sorted(held):
            missing = sorted(set(held) - set(listed))
            extra = sorted((Counter(listed) - Counter(held)).elements())
            self.tally.error(f"client {self.index} {what}: missing {missing}, extra {extra}")

    # -- the loop --------------------------------------------------------------------

    def choices(self) -> list[tuple[int, Callable[[], None]]]:
        """(weight, operation) pairs that fit what the client holds now."""
        found: list[tuple[int, Callable[[], None]]] = [
            (3, self.pull),
            (2, self.remove_image),
            (3, self.list_containers),
            (3, self.list_images),
            (3, self.list_networks),
            (3, self.list_volumes),
            (2, self.events_window),
            (2, self.follow_events),
            (6, self.inspect),
        ]
        if len(self.containers) < MAX_CONTAINERS:
            found.append((14, self.create))
        if len(self.volumes) < MAX_VOLUMES:
            found.append((3, self.create_volume))
        if self.volumes:
            found.append((3, self.remove_volume))
        if self.containers:
            target = self.rng.choice(list(self.containers))
            owned = self.containers[target]
            acts = [
                (10, self.start),
                (8, self.stop),
                (4, self.kill),
                (4, self.pause),
                (7, self.remove),
                (6, self.logs),
                (3, self.follow_logs),
                (8, self.exec),
            ]
            # What a restart does to a --rm container differs between engines: not tried.
            if not owned.auto_remove:
                acts.append((4, self.restart))
            for weight, act in acts:
                found.append((weight, lambda act=act: act(target, owned)))  # type: ignore[misc]
        return found

    def run(self, deadline: float) -> None:
        """Random operations until ``deadline`` (each request bounded by ``TIMEOUT``)."""
        try:
            while time.monotonic() < deadline:
                found = self.choices()
                (operation,) = self.rng.choices(
                    [op for _, op in found], weights=[w for w, _ in found]
                )
                operation()
        except Exception as e:  # a broken answer (bad JSON...): report, end this client
            self.tally.error(f"client {self.index} stopped: {type(e).__name__} {e}")
        finally:
            self.conn.close()


@define
class Watcher:
    """An event stream held open for the whole run; counts what it sees."""

    stream: EventStream
    seen: Counter[tuple[str, str, str]] = field(factory=Counter)
    ended: str = ""

    def run(self, deadline: float) -> None:
        """Read until the marker volume's ``create`` or ``deadline``."""
        try:
            while time.monotonic() < deadline:
                try:
                    event = self.stream.next(timeout=max(0.1, min(5, deadline - time.monotonic())))
                except AssertionError:  # a quiet moment (or the end of the run)
                    continue
                actor = event["Actor"]
                action = event["Action"].split(":")[0]
                if event["Type"] == "image" and action == "pull":
                    key = ("image", actor["Attributes"].get("name", ""), action)
                else:
                    key = (event["Type"], actor["ID"], action)
                self.seen[key] += 1
                if key == ("volume", MARKER, "create"):
                    self.ended = "marker"
                    return
            self.ended = "deadline"
        except (OSError, http.client.HTTPException, ValueError) as e:
            self.ended = f"{type(e).__name__} {e}"
        finally:
            self.stream.close()

    @property
    def counted(self) -> Counter[tuple[str, str, str]]:
        """The events the checks count (the marker's left out)."""
        kept = {"create", "start", "die", "destroy", "exec_create", "exec_die", "pull"}
        return Counter({k: n for k, n in self.seen.items() if k[2] in kept and k[1] != MARKER})

    def mismatches(self, expected: Counter[tuple[str, str, str]]) -> list[str]:
        """Events the operations imply that this stream did not see as many times."""
        seen = self.counted
        return [
            f"{key}: seen {seen[key]}, expected {expected[key]}"
            for key in sorted(seen.keys() | expected.keys())
            if seen[key] != expected[key]
        ]


@define
class Run:
    """One load run: clients, watchers and what they saw."""

    server: ServerProcess
    clients: list[Client]
    tally: Tally
    watchers: list[Watcher]
    seconds: float

    @classmethod
    def prepare(
        cls, server: ServerProcess, refs: list[str], seconds: float, watchers: int = 4
    ) -> "Run":
        """Clients (one per reference) and open event streams, nothing started yet."""
        tally = Tally()
        clients = [Client(i, server, ref, tally) for i, ref in enumerate(refs)]
        streams = [Watcher(EventStream(server, {})) for _ in range(watchers)]
        return cls(server, clients, tally, streams, seconds)

    def go(self) -> None:
        """Run every client until the deadline, then close the event streams with the marker."""
        deadline = time.monotonic() + self.seconds
        # The watchers' own bound: the run, each request's timeout, then the marker.
        watch_until = deadline + TIMEOUT + 30
        threads = [
            threading.Thread(target=c.run, args=(deadline,), daemon=True) for c in self.clients
        ]
        watching = [
            threading.Thread(target=w.run, args=(watch_until,), daemon=True) for w in self.watchers
        ]
        for thread in [*watching, *threads]:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(0, deadline - time.monotonic()) + 2 * TIMEOUT + 30)
            if thread.is_alive():
                self.tally.error(f"{thread.name} still running long after the deadline")
        marker = self.server.request(
            "POST",
            f"{API}/volumes/create",
            json.dumps({"Name": MARKER}).encode(),
            {"Content-Type": "application/json"},
        )
        if marker.status != 201:
            self.tally.error(f"marker volume: {marker.status} {marker.body[:200]!r}")
        for thread in watching:
            thread.join(timeout=max(0, watch_until - time.monotonic()) + 10)
        self.server.request("DELETE", f"{API}/volumes/{MARKER}")

    def problems(self) -> list[str]:
        """What the server's lists and the event streams say against what the clients hold."""
        found = [
            f"server log: {line[:300]}"
            for line in self.server.output().splitlines()
            if LOGGED_FAILURE.search(line)
        ][:20]
        for number, watcher in enumerate(self.watchers):
            if watcher.ended != "marker":
                found.append(f"event stream {number} ended by {watcher.ended or 'nothing'}")
            found += [f"event stream {number}: {m}" for m in watcher.mismatches(self.tally.events)]
        listed = self.server.get_json(f"{API}/containers/json?all=1")
        ids = Counter(c["Id"] for c in listed)
        held = {cid: owned for c in self.clients for cid, owned in c.containers.items()}
        uncertain = {name for c in self.clients for name in c.uncertain}
        found += [f"container {cid} listed {n} times" for cid, n in ids.items() if n > 1]
        found += [f"container {cid} ({held[cid].name}) lost" for cid in held.keys() - ids.keys()]
        for container in listed:
            names = {n.lstrip("/") for n in container["Names"]}
            owned = held.get(container["Id"])
            if owned is None and not names & uncertain:
                found.append(f"container {names} listed but no client holds it")
            elif owned is not None and container["State"] != owned.state:
                found.append(f"container {owned.name}: {container['State']}, not {owned.state}")
        volumes = Counter(
            v["Name"] for v in self.server.get_json(f"{API}/volumes")["Volumes"] or ()
        )
        want = Counter(name for c in self.clients for name in c.volumes)
        if volumes != want:
            found.append(
                f"volumes: missing {sorted(want - volumes)}, extra {sorted(volumes - want)}"
            )
        tags = Counter(
            t
            for image in self.server.get_json(f"{API}/images/json")
            for t in image["RepoTags"] or ()
        )
        want = Counter([RUN_IMAGE] + [c.ref for c in self.clients if c.pulled])
        if tags != want:
            found.append(f"image tags: missing {sorted(want - tags)}, extra {sorted(tags - want)}")
        return found

    def remove_everything(self) -> list[str]:
        """Remove what the run made (the loaded image stays); the failures."""
        failed = []
        for container in self.server.get_json(f"{API}/containers/json?all=1"):
            reply = self.server.request(
                "DELETE", f"{API}/containers/{container['Id']}?force=1&v=1", timeout=TIMEOUT
            )
            if reply.status != 204:
                failed.append(f"rm {container['Id']}: {reply.status} {reply.body[:200]!r}")
        for volume in self.server.get_json(f"{API}/volumes")["Volumes"] or ():
            reply = self.server.request("DELETE", f"{API}/volumes/{volume['Name']}")
            if reply.status != 204:
                failed.append(f"volume rm {volume['Name']}: {reply.status}")
        for client in self.clients:
            if client.pulled:
                reply = self.server.request("DELETE", f"{API}/images/{client.ref}")
                if reply.status != 200:
                    failed.append(f"rmi {client.ref}: {reply.status} {reply.body[:200]!r}")
        return failed
