"""Real clients against a real server: docker-py, the docker CLI, podman-remote, podman-py, treq."""

import os
import re
import subprocess
import sys
from pathlib import Path

import docker
import pytest
from podman import PodmanClient

from tests.integration.containers_support import needs_cli, needs_podman
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

README = Path(__file__).parents[2] / "README.rst"


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


def test_docker_py_ping_version_info(server: ServerProcess) -> None:
    client = docker.DockerClient(base_url=server.uri, version="auto")
    try:
        assert client.ping() is True
        version = client.version()
        assert version["ApiVersion"] == "1.44"
        assert any(c["Name"] == "Podman Engine" for c in version["Components"])
        info = client.info()
        assert info["NCPU"] == os.cpu_count()
        assert info["OSType"] == "linux"
        assert client.api.api_version == "1.44"
    finally:
        client.close()


@needs_cli
def test_docker_cli_version_and_info(server: ServerProcess) -> None:
    version = run(
        ["docker", "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}"],
        DOCKER_HOST=server.uri,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "1.44 linux"
    info = run(
        ["docker", "info", "--format", "{{.NCPU}} {{.DefaultRuntime}} {{.Driver}}"],
        DOCKER_HOST=server.uri,
    )
    assert info.returncode == 0, info.stderr
    ncpu, runtime, driver = info.stdout.split()
    assert int(ncpu) == os.cpu_count()
    assert runtime in ("runc", "crun")
    assert driver in ("overlay", "vfs")
    plain = run(["docker", "info"], DOCKER_HOST=server.uri)
    assert plain.returncode == 0, plain.stderr
    assert "Server Version: 5." in plain.stdout


@needs_podman
def test_podman_remote_info(server: ServerProcess, tmp_path: Path) -> None:
    result = run(
        [
            "podman",
            "--remote",
            "--url",
            server.uri,
            "info",
            "--format",
            "{{.Host.OCIRuntime.Name}} {{.Host.CgroupsVersion}} {{.Store.GraphRoot}}",
        ],
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    assert result.returncode == 0, result.stderr
    runtime, cgroups, graph_root = result.stdout.split()
    assert runtime in ("runc", "crun")
    assert cgroups in ("v1", "v2")
    assert graph_root == str(server.root)
    version = run(["podman", "--remote", "--url", server.uri, "version"], HOME=str(tmp_path))
    assert version.returncode == 0, version.stderr
    assert "5.4.0" in version.stdout


def test_podman_py_info_and_version(server: ServerProcess) -> None:
    with PodmanClient(base_url=f"http+unix://{server.sock}") as client:
        assert client.ping() is True
        info = client.info()
        assert info["host"]["cpus"] == os.cpu_count()
        assert info["store"]["runRoot"] == str(server.runroot)
        assert client.version()["ApiVersion"] == "1.44"


def test_treq_example_from_the_readme(server: ServerProcess, tmp_path: Path) -> None:
    """The README's treq script runs as written."""
    match = re.search(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", README.read_text())
    assert match is not None
    script = tmp_path / "treq_info.py"
    script.write_text("\n".join(line[4:] for line in match.group(1).splitlines()))
    result = run([sys.executable, str(script), str(server.sock)])
    assert result.returncode == 0, result.stderr
    runtime, cgroups = result.stdout.split()
    assert runtime in ("runc", "crun")
    assert cgroups in ("v1", "v2")
