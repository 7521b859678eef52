"""Kill the server with SIGKILL at random moments of random work, restart it, check.

Shared by ``tests/integration/test_crash_loop.py`` (a bounded run in the suite)
and ``bench/crashsoak.py`` (a long soak).  A round: clients run random
operations (create, start, stop, rm, image load, commit, network connect and
disconnect, volume create, exec) against the server; after a random delay the
server gets SIGKILL; it is started again and the invariants are checked:

- it starts, and its database passes SQLite's integrity and foreign-key checks;
- every container can be inspected, started and removed; no exec session is
  running without a process;
- every volume has its directory, every image can be inspected and saved whole,
  every network removed;
- once all is removed nothing is left: mounts, cgroups, conmon processes, netns
  files, runtime state, container directories, staging files, this server's
  bridges, veths and firewall rules.

Everything is removed at the end of each round, so each round starts clean.
"""

import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrs import define, field

from tests.hostleaks import firewall_rules, interfaces
from tests.integration.containers_support import (
    conmon_pids_for,
    container_cgroups,
    containers_created_by,
    mounts_below,
)
from tests.integration.crash_support import API, CUT_OFF, post
from tests.support import ServerProcess, wait_for

IMAGE = "acc-busybox:latest"
SLEEP = ["sleep", "1000"]


@define
class Tally:
    """What the rounds saw."""

    rounds: int = 0
    #: Rounds in which the kill cut a request short.
    mid_operation: int = 0
    operations: int = 0
    #: Answers >= 500 while the server lived (each one a finding).
    server_errors: list[str] = field(factory=list)


@define
class Workload:
    """Random operations against one server, from several client threads."""

    server: ServerProcess
    archive: bytes
    rng: random.Random
    containers: list[str] = field(factory=list)
    execs: list[str] = field(factory=list)
    in_flight: int = 0
    lock: threading.Lock = field(factory=threading.Lock)
    tally: Tally = field(factory=Tally)

    def _pick(self, items: list[str]) -> str | None:
        with self.lock:
            return self.rng.choice(items) if items else None

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        with self.lock:
            self.in_flight += 1
        try:
            if body is None or isinstance(body, bytes):
                reply = self.server.request(method, path, body, timeout=timeout)
            else:
                reply = post(self.server, path, body, timeout=timeout)
        finally:
            with self.lock:
                self.in_flight -= 1
        if reply.status >= 500:
            self.tally.server_errors.append(f"{method} {path}: {reply.status} {reply.body[:300]!r}")
        return reply

    def create(self) -> None:
        options: dict[str, Any] = {"AutoRemove": self.rng.random() < 0.2}
        if self.rng.random() < 0.3:
            options["Binds"] = [f"crashvol{self.rng.randrange(3)}:/data"]
        body = {"Image": IMAGE, "Cmd": SLEEP, "HostConfig": options}
        reply = self._call("POST", f"{API}/containers/create", body)
        if reply.status == 201:
            with self.lock:
                self.containers.append(reply.json()["Id"])

    def start(self) -> None:
        if (target := self._pick(self.containers)) is not None:
            self._call("POST", f"{API}/containers/{target}/start")

    def stop(self) -> None:
        if (target := self._pick(self.containers)) is not None:
            self._call("POST", f"{API}/containers/{target}/stop?t=0")

    def remove(self) -> None:
        if (target := self._pick(self.containers)) is not None:
            self._call("DELETE", f"{API}/containers/{target}?force=1")

    def load(self) -> None:
        self._call("POST", f"{API}/images/load", self.archive)

    def commit(self) -> None:
        if (target := self._pick(self.containers)) is not None:
            self._call("POST", f"{API}/commit?container={target}&repo=crashcommit&pause=1")

    def connect(self) -> None:
        target = self._pick(self.containers)
        if target is None:
            return
        self._call("POST", f"{API}/networks/create", {"Name": "crashnet"})
        action = "connect" if self.rng.random() < 0.6 else "disconnect"
        self._call("POST", f"{API}/networks/crashnet/{action}", {"Container": target})

    def volume(self) -> None:
        self._call("POST", f"{API}/volumes/create", {"Name": f"crashvol{self.rng.randrange(3)}"})

    def exec(self) -> None:
        if (target := self._pick(self.containers)) is None:
            return
        reply = self._call("POST", f"{API}/containers/{target}/exec", {"Cmd": ["true"]})
        if reply.status == 201:
            exec_id = reply.json()["Id"]
            with self.lock:
                self.execs.append(exec_id)
            self._call("POST", f"{API}/exec/{exec_id}/start", {"Detach": True})

    def client(self, stop: threading.Event) -> None:
        """Random operations until ``stop`` or until the server is gone."""
        operations: list[Callable[[], None]] = [
            self.create,
            self.create,
            self.start,
            self.start,
            self.stop,
            self.remove,
            self.load,
            self.commit,
            self.connect,
            self.volume,
            self.exec,
        ]
        while not stop.is_set():
            operation = self.rng.choice(operations)
            try:
                operation()
            except CUT_OFF:
                return
            self.tally.operations += 1


def crash_round(workload: Workload, clients: int = 2, max_delay: float = 1.5) -> None:
    """Run the clients, SIGKILL the server after a random delay, restart, check, clean."""
    server = workload.server
    stop = threading.Event()
    threads = [
        threading.Thread(target=workload.client, args=(stop,), daemon=True) for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    # The random moment of the kill is the point of the round (not a wait for something).
    stop.wait(workload.rng.uniform(0.05, max_delay))
    with workload.lock:
        cut = workload.in_flight > 0
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=90)
        assert not thread.is_alive(), "a client hung on a dead server"
    workload.tally.rounds += 1
    workload.tally.mid_operation += cut
    server.start()
    check_and_clean(workload)


def check_and_clean(workload: Workload) -> None:
    """The invariants of the module docstring; everything is removed afterwards."""
    server = workload.server
    check_database(server.root / "podapi.db")
    for container in server.get_json(f"{API}/containers/json?all=1"):
        usable(server, container["Id"])
    for exec_id in workload.execs:
        reply = server.request("GET", f"{API}/exec/{exec_id}/json")
        if reply.status == 200:
            session = reply.json()
            assert not session["Running"] or session["Pid"] > 0, session
    workload.containers.clear()
    workload.execs.clear()
    for volume in server.get_json(f"{API}/volumes")["Volumes"] or ():
        assert Path(volume["Mountpoint"]).is_dir(), volume
        reply = server.request("DELETE", f"{API}/volumes/{volume['Name']}")
        assert reply.status == 204, reply.body
    for image in server.get_json(f"{API}/images/json"):
        whole_image(server, image["Id"], keep=IMAGE in (image["RepoTags"] or ()))
    subnets = [default_subnet(server)]
    for network in server.get_json(f"{API}/networks"):
        if network["Name"] == "crashnet":
            subnets += [c["Subnet"].rsplit(".", 1)[0] + "." for c in network["IPAM"]["Config"]]
            reply = server.request("DELETE", f"{API}/networks/crashnet")
            assert reply.status == 204, reply.body
    nothing_left(server, subnets)


def check_database(path: Path) -> None:
    """SQLite's own checks (read-only, beside the running server: WAL allows it)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def usable(server: ServerProcess, container_id: str) -> None:
    """Inspect, start (if not running) and remove: each works."""
    reply = server.request("GET", f"{API}/containers/{container_id}/json")
    if reply.status == 404:
        return  # a --rm container whose exit was settled meanwhile
    assert reply.status == 200, reply.body
    state = reply.json()["State"]
    if not state["Running"]:
        started = server.request("POST", f"{API}/containers/{container_id}/start")
        assert started.status in (204, 404), (state, started.body)
    reply = server.request("DELETE", f"{API}/containers/{container_id}?force=1&v=1")
    assert reply.status in (204, 404), reply.body


def whole_image(server: ServerProcess, image_id: str, *, keep: bool) -> None:
    """The image inspects and saves completely (no half-written blob); removed unless kept."""
    assert server.request("GET", f"{API}/images/{image_id}/json").status == 200
    saved = server.request("GET", f"{API}/images/{image_id}/get", timeout=120)
    assert saved.status == 200 and len(saved.body) > 1024, saved.body[:300]
    if not keep:
        reply = server.request("DELETE", f"{API}/images/{image_id}?force=1")
        assert reply.status == 200, reply.body


def nothing_left(server: ServerProcess, subnets: list[str]) -> None:
    """No trace of a container on the host or in the server's directories."""
    assert mounts_below(server.base) == []
    assert container_cgroups(containers_created_by(server)) == []
    wait_for(lambda: conmon_pids_for(server.root) == [], timeout=30)
    for directory in (
        server.root / "containers",
        server.runroot / "containers",
        server.runroot / "runtime",
        server.runroot / "netns",
        server.root / "blobs" / "staging",
        server.root / "layers-staging",
        server.root / "tmp",
    ):
        assert not directory.exists() or list(directory.iterdir()) == [], directory
    bridges = _server_bridges(server)
    # netavark removes a bridge (and its rules) with its last container.
    wait_for(lambda: not (interfaces() & bridges), timeout=30)
    assert [rule for rule in firewall_rules() if any(s in rule for s in subnets)] == []


def _server_bridges(server: ServerProcess) -> set[str]:
    args = server.args
    default = args[args.index("--default-bridge") + 1]
    prefix = args[args.index("--bridge-prefix") + 1]
    return {default} | {f"{prefix}{index}" for index in range(8)}


def default_subnet(server: ServerProcess) -> str:
    args = server.args
    return args[args.index("--default-subnet") + 1].rsplit(".", 1)[0] + "."


def run_rounds(workload: Workload, rounds: int, budget: float) -> Tally:
    """Up to ``rounds`` rounds, stopping early once ``budget`` seconds have passed."""
    deadline = time.monotonic() + budget
    for _ in range(rounds):
        if time.monotonic() > deadline:
            break
        crash_round(workload)
    return workload.tally
