"""The server and podapi.cleanup exclude each other (flock), and a killed server's helpers
are waited for."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from podapi.engine.bundle import exit_command
from podapi.engine.layout import Layout
from podapi.engine.serverlock import (
    ServerRunning,
    cleanups_running,
    enter_cleanup,
    exclude_cleanups,
    take_server_lock,
)
from podapi.oci.leftovers import helpers_naming, wait_for_exit


def test_a_cleanup_leaves_the_exit_to_a_running_server(tmp_path: Path) -> None:
    server = take_server_lock(str(tmp_path / "server.lock"))
    cleanups = exclude_cleanups(str(tmp_path / "cleanup.lock"))
    try:
        assert enter_cleanup(str(tmp_path)) is None
        with pytest.raises(ServerRunning):
            take_server_lock(str(tmp_path / "server.lock"))
    finally:
        os.close(cleanups)
        os.close(server)


def test_a_starting_server_waits_for_a_running_cleanup(tmp_path: Path) -> None:
    cleanup = enter_cleanup(str(tmp_path))
    assert cleanup is not None
    assert cleanups_running(str(tmp_path / "cleanup.lock"))
    server = take_server_lock(str(tmp_path / "server.lock"))
    # A cleanup arriving now sees the starting server and leaves the exit to it.
    assert enter_cleanup(str(tmp_path)) is None
    excluded: list[int] = []
    waiting = threading.Thread(
        target=lambda: excluded.append(exclude_cleanups(str(tmp_path / "cleanup.lock")))
    )
    waiting.start()
    waiting.join(timeout=0.2)
    assert waiting.is_alive()  # blocked while the cleanup works
    os.close(cleanup)
    waiting.join(timeout=10)
    assert excluded
    os.close(excluded[0])
    os.close(server)


def test_the_exit_command_starts_no_cleanup_while_a_server_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """conmon's exit command: flock(1) answers for a running server (no Python starts);
    without a server it runs ``podapi.cleanup`` with the container's arguments."""
    started = tmp_path / "started"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$@" > {started}\n')
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    layout = Layout(root=str(tmp_path / "root"), runroot=str(tmp_path))
    argv = exit_command(layout, "c0ffee")
    server = exclude_cleanups(layout.cleanup_lock)
    try:
        assert subprocess.run(argv, check=False, timeout=30).returncode == 0
        assert not started.exists()
    finally:
        os.close(server)
    assert subprocess.run(argv, check=False, timeout=30).returncode == 0
    assert started.read_text().split() == [
        "-m",
        "podapi.cleanup",
        "--root",
        layout.root,
        "--runroot",
        layout.runroot,
        "c0ffee",
    ]


def test_helpers_of_a_killed_server_are_waited_for(tmp_path: Path) -> None:
    """Only the short-lived helpers naming the path count; the wait ends when they do."""
    marker = str(tmp_path / "runroot")
    # ``flock`` is one of the helpers: it runs netavark under the runroot's lock.
    lock = tmp_path / "lock"
    # Long enough to be seen on a loaded machine; the wait below still ends with it.
    helper = subprocess.Popen(["flock", str(lock), "sleep", "3"], cwd=tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    try:
        assert helpers_naming(str(lock)) == [helper.pid]
        assert helpers_naming(marker) == []  # not a helper: never waited for
        assert wait_for_exit([helper.pid], timeout=10) == []
        assert helper.wait(timeout=5) == 0
        assert wait_for_exit([other.pid], timeout=0.1) == [other.pid]
    finally:
        other.kill()
        other.wait()
        helper.wait()
