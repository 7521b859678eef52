"""Secrets through real clients: ``podman --remote secret``, podman-py, containers that
read them as files (owner and mode as asked) or env, and the data never leaking into
inspect, list, logs, events or any file outside the secret store.

Real socket, runc and conmon.
"""

import hashlib
import json
import os
import secrets
import time
from pathlib import Path

import pytest
from podman import PodmanClient
from podman.errors import APIError, NotFound

from tests.integration.containers_support import (
    IMAGE,
    load_image,
    needs_cli,
    needs_podman,
    podman,
)
from tests.integration.containers_support import docker as docker_cli
from tests.support import ServerProcess

pytestmark = pytest.mark.integration


def _files_holding(base: Path, needle: bytes, skip: set[Path]) -> list[str]:
    """Every regular file under ``base`` (not under a ``skip`` directory) holding ``needle``."""
    found = []
    for directory, dirs, files in os.walk(base):
        here = Path(directory)
        dirs[:] = [d for d in dirs if here / d not in skip]
        for name in files:
            path = here / name
            if path in skip or not path.is_file() or path.is_symlink():
                continue
            try:
                if needle in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


@needs_podman
def test_podman_remote_secret_create_ls_inspect_rm(box: ServerProcess, tmp_path: Path) -> None:
    """``podman --remote secret`` create (from stdin), ls, inspect (no data), a duplicate
    refused (409), rm, and an unknown one refused (404)."""
    data = "remote-" + secrets.token_hex(8)
    created = podman(box, tmp_path, "secret", "create", "--label", "a=b", "rsec", "-", stdin=data)
    secret_id = created.stdout.strip()
    assert len(secret_id) == 25
    try:
        listed = podman(box, tmp_path, "secret", "ls", "--format", "{{.ID}} {{.Name}} {{.Driver}}")
        assert f"{secret_id} rsec file" in listed.stdout
        inspect = podman(box, tmp_path, "secret", "inspect", "rsec")
        report = json.loads(inspect.stdout)[0]
        assert report["ID"] == secret_id
        assert report["Spec"]["Name"] == "rsec"
        assert report["Spec"]["Labels"] == {"a": "b"}
        assert data not in inspect.stdout and data not in listed.stdout
        again = podman(box, tmp_path, "secret", "create", "rsec", "-", stdin="x", check=False)
        assert again.returncode != 0
        assert "secret name in use" in again.stderr
    finally:
        podman(box, tmp_path, "secret", "rm", "rsec")
    assert "rsec" not in podman(box, tmp_path, "secret", "ls").stdout
    gone = podman(box, tmp_path, "secret", "inspect", "rsec", check=False)
    assert gone.returncode != 0
    assert "no such secret" in gone.stderr
    big = podman(box, tmp_path, "secret", "create", "big", "-", stdin="x" * 512000, check=False)
    assert big.returncode != 0
    assert "less than 512000 bytes" in big.stderr


@needs_cli
def test_docker_cli_secret_create_ls_inspect_rm(box: ServerProcess) -> None:
    """The docker CLI's swarm-shaped secret commands work on Podman's compat secrets:
    labels as given, ``--pretty``, a duplicate refused, rm."""
    data = "docker-" + secrets.token_hex(8)
    created = docker_cli(
        box, "secret", "create", "--label", "x=y", "dsec", "-", stdin=data.encode()
    )
    secret_id = created.stdout.strip()
    try:
        listed = docker_cli(box, "secret", "ls", "--format", "{{.ID}} {{.Name}} {{.Driver}}")
        assert f"{secret_id} dsec file" in listed.stdout
        inspect = docker_cli(box, "secret", "inspect", "dsec")
        report = json.loads(inspect.stdout)[0]
        assert report["Spec"]["Labels"] == {"x": "y"}
        assert report["Version"] == {"Index": 1}
        pretty = docker_cli(box, "secret", "inspect", "--pretty", "dsec").stdout
        assert " - x=y" in pretty
        assert data not in inspect.stdout + listed.stdout + pretty
        again = docker_cli(box, "secret", "create", "dsec", "-", stdin=b"x", check=False)
        assert again.returncode != 0
        assert "secret name in use" in again.stderr
    finally:
        assert docker_cli(box, "secret", "rm", "dsec").stdout.strip() == "dsec"
    assert "dsec" not in docker_cli(box, "secret", "ls").stdout
    missing = docker_cli(box, "secret", "inspect", "dsec", check=False)
    assert missing.returncode != 0


def test_podman_py_secrets(box: ServerProcess) -> None:
    """podman-py ``client.secrets``: create, get, list, remove; 404 after."""
    with PodmanClient(base_url=f"http+unix://{box.sock}") as client:
        secret = client.secrets.create("pysec", b"py-" + secrets.token_hex(8).encode())
        try:
            assert client.secrets.get("pysec").id == secret.id
            assert secret.id in [s.id for s in client.secrets.list()]
            assert client.secrets.exists("pysec")
            with pytest.raises(APIError) as duplicate:
                client.secrets.create("pysec", b"again")
            assert duplicate.value.response.status_code == 409
        finally:
            client.secrets.remove(secret.id)
        with pytest.raises(NotFound):
            client.secrets.get("pysec")


@needs_podman
def test_containers_read_secrets_and_the_data_leaks_nowhere(
    start_server: object, busybox_archive: Path, tmp_path: Path
) -> None:
    """A container reads its secret file with the asked owner and mode (and at a target);
    another gets it as env; ``secret rm`` is 409 while a container uses it; inspect, list,
    logs and events never show it, nor does any file outside the secret store and the
    container's own copy."""
    server: ServerProcess = start_server()  # type: ignore[operator]
    load_image(server, busybox_archive)
    home = tmp_path / "home"
    home.mkdir()
    data = "tok-" + secrets.token_hex(12)
    secret_id = podman(server, home, "secret", "create", "mysecret", "-", stdin=data).stdout.strip()

    shown = podman(
        server,
        home,
        "run",
        "--rm",
        "--secret",
        "mysecret",
        "--secret",
        "mysecret,target=/etc/app.key",
        "--secret",
        "mysecret,target=sub.key",
        IMAGE,
        "sh",
        "-c",
        "cat /run/secrets/mysecret /etc/app.key /run/secrets/sub.key; "
        "stat -c '%a %u %g' /run/secrets/mysecret",
    ).stdout
    assert shown == f"{data}{data}{data}444 0 0\n"
    assert (
        podman(
            server,
            home,
            "run",
            "--rm",
            "--secret",
            "mysecret,uid=1000,gid=1000,mode=0400",
            "--user",
            "1000:1000",
            IMAGE,
            "cat",
            "/run/secrets/mysecret",
        ).stdout
        == data
    )
    podman(
        server,
        home,
        "run",
        "--name",
        "keeper",
        "--secret",
        "mysecret,uid=1000,gid=1000,mode=0400",
        "--secret",
        "mysecret,type=env,target=TOKEN",
        IMAGE,
        "sh",
        "-c",
        "stat -c '%a %u %g' /run/secrets/mysecret; printf %s \"$TOKEN\" | sha256sum",
    )
    digest = hashlib.sha256(data.encode()).hexdigest()
    assert podman(server, home, "logs", "keeper").stdout == f"400 1000 1000\n{digest}  -\n"
    env = podman(
        server,
        home,
        "run",
        "--rm",
        "--secret",
        "mysecret,type=env,target=TOKEN",
        IMAGE,
        "sh",
        "-c",
        "echo $TOKEN",
    ).stdout
    assert env == data + "\n"

    refused = podman(server, home, "secret", "rm", "mysecret", check=False)
    assert refused.returncode != 0
    assert "in use" in refused.stderr
    reply = server.request("DELETE", "/v1.41/secrets/mysecret")
    assert reply.status == 409, reply.body

    # Events through the API: podman 4.3.1's client panics on a "secret" event (its
    # StringToType knows no such type; Podman emits them since 5.5).
    until = int(time.time()) + 1
    compat_events = server.request("GET", f"/v1.41/events?until={until}").body.decode()
    views = [
        podman(server, home, "inspect", "keeper").stdout,
        podman(server, home, "logs", "keeper").stdout,
        podman(server, home, "secret", "inspect", "mysecret").stdout,
        podman(server, home, "secret", "ls").stdout,
        podman(server, home, "ps", "-a", "--format", "json").stdout,
        server.request("GET", "/v1.41/secrets").body.decode(),
        server.request("GET", "/v1.41/containers/keeper/json").body.decode(),
        compat_events,
        server.request("GET", f"/v5.5.0/libpod/events?stream=false&until={until}").body.decode(),
    ]
    for index, view in enumerate(views):
        assert data not in view, (index, view)
    secret_events = [
        (e["Action"], e["Actor"]["ID"])
        for e in map(json.loads, compat_events.splitlines())
        if e["Type"] == "secret"
    ]
    assert secret_events == [("create", secret_id)]

    keeper = podman(server, home, "inspect", "keeper", "--format", "{{.Id}}").stdout.strip()
    store = server.root / "secrets" / "filedriver"
    copies = server.runroot / "containers" / keeper / "secrets"
    assert _files_holding(store, data.encode(), set()) == [str(store / secret_id)]
    assert sorted(os.listdir(copies)) == ["0-mysecret"]
    leaks = [
        *_files_holding(server.root, data.encode(), {store}),
        *_files_holding(server.runroot, data.encode(), {copies}),
    ]
    # keeper's process env (TOKEN) is in its OCI config and runc's state, as with Podman:
    # the runtime reads it from there.  Nothing else may hold the data.
    allowed = {
        str(server.runroot / "containers" / keeper / "config.json"),
        str(server.runroot / "runtime" / keeper / "state.json"),
    }
    assert [p for p in leaks if p not in allowed] == []

    podman(server, home, "rm", "keeper")
    podman(server, home, "secret", "rm", "mysecret")
    assert _files_holding(server.root, data.encode(), set()) == []
    assert _files_holding(server.runroot, data.encode(), set()) == []
    missing = podman(
        server, home, "run", "--rm", "--secret", "mysecret", IMAGE, "true", check=False
    )
    assert missing.returncode != 0
    assert "no such secret" in missing.stderr
