"""Secrets: metadata in the state database, data in the file driver under ``--root``.

The file driver keeps one file per secret ID in ``<root>/secrets/filedriver``
(mode 0600, written to a temporary file, fsynced and renamed into place, in
the engine's thread pool).  Secret data never goes into the database, an
event, a log line, an inspect or a list; only ``showsecret`` on the libpod
inspect returns it.

Containers take secrets (libpod ``SpecGenerator.secrets``/``secret_env``):
the names are resolved and recorded at create (``secret_users``), and at each
start the data is copied into the container's run directory with the asked
owner and mode and bind-mounted read-only at ``/run/secrets/<name>`` (or the
target), or given as environment variables to the process.

Behaviour follows Podman (containers/common ``pkg/secrets``): names of up to
64 ``[a-zA-Z0-9_.-]`` starting and ending alphanumeric, 25-hex-digit IDs,
lookup by name, ID or unique ID prefix, data of 1 to 511999 bytes,
``--replace`` keeps the creation time and gives a new ID.  Differences, on
purpose:

* Only the ``file`` driver, and it takes no options: the data always lives
  under ``--root`` and no host path is ever shown (Podman shows its storage
  path as the ``path`` option).
* A duplicate name is 409, bad names, data sizes, drivers and filters 400, an
  ambiguous ID prefix 400 (Podman: 500 for all but the compat duplicate).
* Removing a secret a container uses is 409 (Podman 4.3.1 removes it).
* The list also takes Docker's ``label`` filter; keys are AND-ed (Podman
  keeps only the last key's answer).
"""

import contextlib
import os
import re
import secrets as tokens
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from attrs import evolve, frozen

from podapi.engine.containerspec import ContainerSpec, SecretMount
from podapi.engine.events import EventBus
from podapi.engine.filters import labels_match, name_patterns
from podapi.engine.state import secrets as rows
from podapi.engine.state.database import State
from podapi.engine.state.secrets import ID_LENGTH, SecretRecord, no_such_secret
from podapi.errors import InvalidArgument
from podapi.threads import Blocking

DRIVER = "file"
#: containers/common ``maxSecretSize``: data must be shorter than this many bytes.
MAX_SIZE = 512000
NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
#: Where a container finds its secrets, unless a target says otherwise.
SECRETS_DIR = "/run/secrets"
#: Podman's default file mode of a mounted secret (``--secret`` without ``mode``).
DEFAULT_MODE = 0o444
FILTER_KEYS = frozenset({"name", "id", "label"})


def check_name(name: str) -> str:
    """containers/common ``validateSecretName``."""
    if not NAME.match(name) or len(name) > 64 or name.endswith(("-", ".")):
        raise InvalidArgument(
            "only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character "
            f"must be [a-zA-Z0-9]: {name}: invalid secret name",
            cause="invalid secret name",
        )
    return name


def check_size(data: bytes) -> bytes:
    """containers/common's size rule (``errDataSize``), message and all."""
    if not 0 < len(data) < MAX_SIZE:
        raise InvalidArgument(
            f"secret data must be larger than 0 and less than {MAX_SIZE} bytes",
            cause="invalid secret data size",
        )
    return data


def check_driver(driver: str, options: Mapping[str, str]) -> str:
    """The file driver (the default), without options."""
    driver = driver or DRIVER
    if driver != DRIVER:
        raise InvalidArgument(
            f"unsupported secret driver {driver!r}: only the file driver is available: "
            "invalid driver",
            cause="invalid driver",
        )
    if options:
        raise InvalidArgument(
            f"invalid driver options {sorted(options)}: the file driver keeps the data under "
            "the server's root and takes no options: invalid driver option",
            cause="invalid driver option",
        )
    return driver


def build_filter(filters: Mapping[str, Sequence[str]]) -> Callable[[SecretRecord], bool]:
    """Podman's secret filters (``name``, ``id``: regular expressions, any value) and
    Docker's ``label`` (every value); keys in any case, AND-ed; 400 for others."""
    tests: list[Callable[[SecretRecord], bool]] = []
    for key, values in filters.items():
        folded = key.lower()
        if folded not in FILTER_KEYS:
            raise InvalidArgument(f'invalid filter "{key}"', cause="invalid filter")
        if folded == "label":
            tests.append(partial(_labelled, list(values)))
        else:
            tests.append(partial(_matches, folded, name_patterns(values)))
    return lambda record: all(test(record) for test in tests)


def _labelled(values: list[str], record: SecretRecord) -> bool:
    return labels_match(values, record.labels)


def _matches(key: str, patterns: list[re.Pattern[str]], record: SecretRecord) -> bool:
    text = record.name if key == "name" else record.id
    return any(p.search(text) for p in patterns)


def mount_destination(mount_target: str, name: str) -> str:
    """Where a secret appears in the container (Podman's rule: an absolute target as
    is, a relative one under ``/run/secrets``, none: ``/run/secrets/<name>``)."""
    target = mount_target or name
    path = target if os.path.isabs(target) else os.path.join(SECRETS_DIR, target)
    return os.path.normpath(path)


def secret_names(spec: ContainerSpec) -> list[str]:
    """The secrets a container takes (file and environment), in order, once each."""
    return list(dict.fromkeys([*(s.source for s in spec.secrets), *spec.env_secrets.values()]))


def resolve_spec(conn: sqlite3.Connection, spec: ContainerSpec) -> ContainerSpec:
    """The spec with every secret named by its name (blocking; in the container's create
    transaction); 404 for an unknown one."""
    if not spec.secrets and not spec.env_secrets:
        return spec
    names = rows.resolve_names(conn, secret_names(spec))
    return evolve(
        spec,
        secrets=tuple(evolve(s, source=names[s.source]) for s in spec.secrets),
        env_secrets={var: names[name] for var, name in spec.env_secrets.items()},
    )


@frozen
class SecretFile:
    """A secret copied for a container: host path, destination, owner and mode."""

    source: str
    destination: str
    uid: int
    gid: int
    mode: int


# --- blocking file work -------------------------------------------------------------------


def _write_atomic(directory: str, name: str, data: bytes, mode: int) -> str:
    """Write ``data`` to ``directory/name`` whole or not at all (temp, fsync, rename)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, name)
    temp = os.path.join(directory, f".{name}.{tokens.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        _unlink(temp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write_container_file(directory: str, name: str, data: bytes, mount: SecretMount) -> str:
    path = _write_atomic(directory, name, data, 0o600)
    os.chown(path, mount.uid, mount.gid)
    os.chmod(path, mount.mode or DEFAULT_MODE)
    return path


# --- the service --------------------------------------------------------------------------


class SecretService:
    """Secret records and the file driver's data.

    :param directory: the file driver's directory (``Layout.secrets_dir``).
    :param state: the state database.
    :param io: the blocking-work executor.
    :param events: where ``secret`` events go (ID and name, never data).
    :param now_ns: the wall clock in nanoseconds.
    """

    def __init__(
        self,
        directory: str,
        *,
        state: State,
        io: Blocking,
        events: EventBus,
        now_ns: Callable[[], int],
    ) -> None:
        self._dir = directory
        self._state = state
        self._io = io
        self._events = events
        self._now = now_ns

    def _path(self, secret_id: str) -> str:
        return os.path.join(self._dir, secret_id)

    def _emit(self, action: str, record: SecretRecord) -> None:
        self._events.emit("secret", action, record.id, name=record.name)

    async def create(
        self,
        name: str,
        data: bytes,
        *,
        driver: str = "",
        options: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        replace: bool = False,
        ignore: bool = False,
    ) -> SecretRecord:
        """Store a secret: 409 for a name in use unless ``replace`` (new ID and data, same
        creation time) or ``ignore`` (the existing one is answered, untouched)."""
        check_name(name)
        check_size(data)
        driver = check_driver(driver, options or {})
        if replace and ignore:
            raise InvalidArgument("cannot set both replace and ignore")
        if ignore:
            existing = await self._state.read(partial(rows.find_by_name, name=name))
            if existing is not None:
                return existing
        now = self._now()
        record = SecretRecord(
            id=tokens.token_hex(16)[:ID_LENGTH],
            name=name,
            driver=driver,
            created=now,
            updated=now,
            labels=dict(labels or {}),
        )
        await self._io(_write_atomic, self._dir, record.id, data, 0o600)
        try:
            old = await self._state.write(partial(rows.insert, record=record, replace=replace))
        except BaseException:
            await self._io(_unlink, self._path(record.id))
            raise
        if old is not None:
            await self._io(_unlink, self._path(old.id))
            record = evolve(record, created=old.created)
        self._emit("create", record)
        return record

    async def get(self, name_or_id: str) -> SecretRecord:
        """By name, ID or unique ID prefix; 404 otherwise."""
        return await self._state.read(partial(rows.load, name_or_id=name_or_id))

    async def find(self, name_or_id: str) -> SecretRecord | None:
        """As :meth:`get`, None when unknown."""
        return await self._state.read(partial(rows.find, name_or_id=name_or_id))

    async def reveal(self, name_or_id: str) -> tuple[SecretRecord, bytes]:
        """A secret with its data (libpod inspect ``showsecret``)."""
        record = await self.get(name_or_id)
        return record, await self._data(record)

    async def _data(self, record: SecretRecord) -> bytes:
        try:
            return await self._io(_read, self._path(record.id))
        except FileNotFoundError:
            raise no_such_secret(record.name) from None

    async def selected(self, filters: Mapping[str, Sequence[str]]) -> list[SecretRecord]:
        """The secrets ``filters`` select, oldest first."""
        keep = build_filter(filters)
        return [r for r in await self._state.read(rows.all_secrets) if keep(r)]

    async def remove(self, name_or_id: str) -> SecretRecord:
        """Forget a secret and its data; 404 unknown, 409 while a container uses it."""
        record = await self._state.write(partial(rows.delete, name_or_id=name_or_id))
        await self._io(_unlink, self._path(record.id))
        self._emit("remove", record)
        return record

    async def remove_all(self) -> list[SecretRecord]:
        """Remove every secret (``DELETE ...?all=true``); the first in use stops it (409)."""
        removed = []
        for record in await self._state.read(rows.all_secrets):
            removed.append(await self.remove(record.id))
        return removed

    # --- containers ---

    async def for_container(
        self, spec: ContainerSpec, directory: str
    ) -> tuple[list[SecretFile], list[str]]:
        """Copy a container's file secrets into ``directory`` (owner and mode as asked)
        and give its environment secrets as ``VAR=data``; 404 if one is gone."""
        files = []
        for index, mount in enumerate(spec.secrets):
            record = await self._state.read(partial(rows.load, name_or_id=mount.source))
            data = await self._data(record)
            path = await self._io(
                _write_container_file, directory, f"{index}-{record.name}", data, mount
            )
            files.append(
                SecretFile(
                    path,
                    mount_destination(mount.target, record.name),
                    mount.uid,
                    mount.gid,
                    mount.mode or DEFAULT_MODE,
                )
            )
        env = []
        for variable, name in spec.env_secrets.items():
            record = await self._state.read(partial(rows.load, name_or_id=name))
            data = await self._data(record)
            env.append(f"{variable}={data.decode('utf-8', 'replace')}")
        return files, env
