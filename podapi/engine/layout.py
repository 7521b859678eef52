"""Where the engine keeps things under ``--root`` (persistent) and ``--runroot`` (volatile)."""

import contextlib
import os

from attrs import frozen


@frozen
class Layout:
    """Paths derived from the two roots; see docs/architecture.rst, "Where data lives"."""

    root: str
    runroot: str

    @property
    def database(self) -> str:
        """The SQLite state database."""
        return os.path.join(self.root, "podapi.db")

    @property
    def events_dir(self) -> str:
        """The persisted event log (``events.log`` plus one rotated file)."""
        return os.path.join(self.root, "events")

    @property
    def spool_dir(self) -> str:
        """Uploaded request bodies too big for memory (image loads, archives)."""
        return os.path.join(self.root, "tmp")

    @property
    def secrets_dir(self) -> str:
        """The file driver's secret data, one file per secret ID (mode 0600)."""
        return os.path.join(self.root, "secrets", "filedriver")

    @property
    def exits_dir(self) -> str:
        """Where conmon writes exit files (``<id>`` -> exit code)."""
        return os.path.join(self.runroot, "exits")

    @property
    def runtime_state(self) -> str:
        """The OCI runtime's private state directory (``runc --root``)."""
        return os.path.join(self.runroot, "runtime")

    @property
    def netavark_state(self) -> str:
        """netavark's ``--config``: aardvark-dns configuration and its PID file."""
        return os.path.join(self.runroot, "networks")

    @property
    def server_lock(self) -> str:
        """Held (flock) while a server runs, so ``podapi.cleanup`` leaves exits to it."""
        return os.path.join(self.runroot, "server.lock")

    @property
    def cleanup_lock(self) -> str:
        """Shared by every running cleanup (``podapi.cleanup``), exclusive to the server
        (:mod:`podapi.engine.serverlock`)."""
        return os.path.join(self.runroot, "cleanup.lock")

    def container_ids_on_disk(self) -> set[str]:
        """Names of the container directories in both roots (blocking)."""
        found: set[str] = set()
        for parent in (
            os.path.join(self.root, "containers"),
            os.path.join(self.runroot, "containers"),
        ):
            with contextlib.suppress(FileNotFoundError):
                found.update(os.listdir(parent))
        return found

    def container(self, container_id: str) -> "ContainerPaths":
        """The paths of one container."""
        return ContainerPaths(
            os.path.join(self.root, "containers", container_id),
            os.path.join(self.runroot, "containers", container_id),
        )

    def create(self) -> None:
        """Create the directories (blocking: call from a thread)."""
        for path in (
            self.root,
            self.events_dir,
            self.spool_dir,
            os.path.join(self.root, "containers"),
        ):
            os.makedirs(path, mode=0o700, exist_ok=True)
        for path in (
            self.runroot,
            self.exits_dir,
            self.runtime_state,
            self.netavark_state,
            os.path.join(self.runroot, "containers"),
        ):
            os.makedirs(path, mode=0o700, exist_ok=True)


@frozen
class ContainerPaths:
    """Where one container's files live.

    :ivar root: persistent: the overlay upper/work dirs, the mount point, the
        log and the files bind-mounted into the container.
    :ivar run: volatile: the OCI bundle (``config.json``), conmon's attach
        socket and control FIFOs, pid files.
    """

    root: str
    run: str

    def _in_root(self, name: str) -> str:
        return os.path.join(self.root, name)

    def _in_run(self, name: str) -> str:
        return os.path.join(self.run, name)

    @property
    def upper(self) -> str:
        return self._in_root("upper")

    @property
    def work(self) -> str:
        return self._in_root("work")

    @property
    def merged(self) -> str:
        """The rootfs mount point."""
        return self._in_root("merged")

    @property
    def userdata(self) -> str:
        return self._in_root("userdata")

    @property
    def log(self) -> str:
        """conmon's k8s-file log (its path must not contain ``:``)."""
        return self._in_root("ctr.log")

    @property
    def hosts(self) -> str:
        return os.path.join(self.userdata, "hosts")

    @property
    def hostname(self) -> str:
        return os.path.join(self.userdata, "hostname")

    @property
    def resolv_conf(self) -> str:
        return os.path.join(self.userdata, "resolv.conf")

    @property
    def containerenv(self) -> str:
        return os.path.join(self.userdata, ".containerenv")

    @property
    def secrets(self) -> str:
        """Copies of the container's file secrets, bind-mounted read-only (volatile)."""
        return self._in_run("secrets")

    @property
    def bundle(self) -> str:
        """The OCI bundle dir; conmon puts ``attach``, ``ctl`` and ``winsz`` here."""
        return self.run

    @property
    def config_json(self) -> str:
        return self._in_run("config.json")

    @property
    def pidfile(self) -> str:
        return self._in_run("pidfile")

    @property
    def conmon_pidfile(self) -> str:
        return self._in_run("conmon.pid")

    @property
    def conmon_log(self) -> str:
        return self._in_run("conmon.log")

    def exec_dir(self, exec_id: str) -> str:
        """One exec session's conmon bundle: ``attach``, ``ctl``, pid and exit files."""
        return self._in_run(os.path.join("exec", exec_id))

    @property
    def attach(self) -> str:
        return self._in_run("attach")
