"""A container list costs one query and reads no container's files, whatever the count.

Podman's list reads its state database only; so does ours: state comes from the
rows (kept current by exit handling), never from runc, conmon or the files under
a container's directory.  Rows are decoded again only when they changed.
"""

import sqlite3
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from treq.testing import StubTreq

from podapi.engine.containerspec import ContainerSpec
from podapi.engine.engine import Engine
from podapi.engine.state import containers as container_rows
from podapi.engine.state.containers import RUNNING
from tests.http.test_resources import add_container

LISTS = ("/v1.44/containers/json?all=1", "/v4.0.0/libpod/containers/json?all=true")


class Watch:
    """What the process does while :attr:`on`: SQL statements, files opened under a
    directory, processes started (Python's audit events see every ``open`` and spawn)."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.on = False
        self.statements: list[str] = []
        self.opened: list[str] = []
        self.spawned: list[str] = []

    def sql(self, statement: str) -> None:
        if self.on:
            self.statements.append(statement)

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.on:
            return
        if event == "open" and str(args[0]).startswith(self.root):
            self.opened.append(str(args[0]))
        elif event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork"):
            self.spawned.append(event)


#: Audit hooks cannot be removed: one for the session, pointed at each test's watch.
_current: list[Watch] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _current:
        _current[-1].audit(event, args)


sys.addaudithook(_audit)


@pytest.fixture
def watch(engine: Engine, tmp_path: Path) -> Iterator[Watch]:
    watch = Watch(tmp_path)
    conn: sqlite3.Connection = engine.state._connection()  # the one the DB thread uses
    conn.set_trace_callback(watch.sql)
    _current.append(watch)
    yield watch
    _current.remove(watch)
    conn.set_trace_callback(None)


async def add_containers(engine: Engine, first: int, count: int) -> list[str]:
    """``count`` containers, every other one running (as its row says)."""
    ids = []
    for n in range(first, first + count):
        container_id = f"{n:08x}" + "c" * 56  # named by its first 8 characters
        await add_container(engine, container_id, ContainerSpec(image="busybox", command=("true",)))
        if n % 2:
            await engine.state.write(
                partial(
                    container_rows.update, container_id=container_id, state=RUNNING, pid=10_000 + n
                )
            )
        ids.append(container_id)
    return ids


async def list_once(api: StubTreq, watch: Watch, path: str) -> list[dict[str, Any]]:
    watch.statements.clear()
    watch.on = True
    try:
        response = await api.get("http://d" + path)
        body = await response.json()
    finally:
        watch.on = False
    assert response.code == 200, body
    return list(body)


@pytest_twisted.ensureDeferred
async def test_a_list_is_one_query_and_touches_no_container_file(
    api: StubTreq, engine: Engine, watch: Watch
) -> None:
    """With 4 and with 40 containers: the same statements, no file opened, no process."""
    await add_containers(engine, 1, 4)
    with_few = {}
    for path in LISTS:
        assert len(await list_once(api, watch, path)) == 4
        with_few[path] = list(watch.statements)
    await add_containers(engine, 5, 36)
    for path in LISTS:
        assert len(await list_once(api, watch, path)) == 40
        assert watch.statements == with_few[path], path
        assert len(watch.statements) == 1, watch.statements
        assert watch.statements[0].startswith("SELECT * FROM containers")
    assert watch.opened == []
    assert watch.spawned == []


@pytest_twisted.ensureDeferred
async def test_a_list_decodes_only_the_rows_that_changed(
    api: StubTreq, engine: Engine, watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unchanged rows are not decoded again; a changed one is, and the list shows it."""
    decoded: list[str] = []
    real = container_rows._decode

    def counting(row: sqlite3.Row) -> container_rows.ContainerRecord:
        decoded.append(row["id"])
        return real(row)

    monkeypatch.setattr(container_rows, "_decode", counting)
    ids = await add_containers(engine, 1000, 10)  # IDs no other test decoded
    await list_once(api, watch, LISTS[0])  # each row decoded once, since it last changed
    assert sorted(decoded) == sorted(ids)
    decoded.clear()
    await list_once(api, watch, LISTS[1])
    assert decoded == []
    # As ``podapi.cleanup`` (another process) records an exit: the row changes under us.
    await engine.state.write(
        lambda conn: conn.execute(
            "UPDATE containers SET state = 'exited', exit_code = 3 WHERE id = ?", (ids[0],)
        )
    )
    decoded.clear()
    found = {c["Id"]: c for c in await list_once(api, watch, LISTS[1])}
    assert decoded == [ids[0]]
    assert (found[ids[0]]["State"], found[ids[0]]["ExitCode"]) == ("exited", 3)
    assert found[ids[1]]["State"] == "running"
