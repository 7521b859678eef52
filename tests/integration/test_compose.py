"""docker-compose 1.29, a real client of the API: a network, a published port, a volume."""

import os
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import docker
import pytest

from tests.integration.containers_support import IMAGE
from tests.support import ServerProcess, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose missing"),
]

COMPOSE_FILE = """\
version: "3.7"
services:
  web:
    image: {image}
    command: ["sh", "-c", "echo served > /data/index.html && exec httpd -f -p 80 -h /data"]
    ports: ["127.0.0.1:{port}:80"]
    volumes: ["pages:/data"]
    networks: [backend]
  probe:
    image: {image}
    command:
      - sh
      - -c
      - for i in $$(seq 100); do wget -qO- http://web/ && exit 0; sleep 0.1; done; exit 1
    depends_on: [web]
    networks: [backend]
networks:
  backend: {{}}
volumes:
  pages: {{}}
"""


def _compose(server: ServerProcess, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker-compose", "--no-ansi", "-p", "stack", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "DOCKER_HOST": server.uri, "COMPOSE_INTERACTIVE_NO_CLI": "1"},
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.read() == b"served\n")
    except OSError:
        return False


def test_compose_up_and_down_with_network_port_and_volume(
    box: ServerProcess, client: docker.DockerClient, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE.format(image=IMAGE, port=port))
    try:
        _compose(box, tmp_path, "up", "-d")
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), timeout=30)
        probe = client.containers.get("stack_probe_1")
        assert probe.wait(timeout=60)["StatusCode"] == 0
        assert probe.logs() == b"served\n"
        assert "stack_backend" in {n.name for n in client.networks.list()}
        assert client.volumes.get("stack_pages").attrs["Driver"] == "local"
        listed = _compose(box, tmp_path, "ps").stdout
        assert "stack_web_1" in listed and f"127.0.0.1:{port}->80/tcp" in listed
    finally:
        _compose(box, tmp_path, "down", "-v")
    assert [c.name for c in client.containers.list(all=True) if c.name.startswith("stack_")] == []
    assert "stack_backend" not in {n.name for n in client.networks.list()}
    assert "stack_pages" not in {v.name for v in client.volumes.list()}
    assert not _answers(f"http://127.0.0.1:{port}/")
