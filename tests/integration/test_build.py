"""Building images from Dockerfiles with real clients: docker CLI (classic builder),
docker-py, ``podman --remote``, docker-compose, curl."""

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from urllib.parse import quote

import docker
import pytest

from tests.integration.containers_support import IMAGE, needs_cli, needs_podman, podman
from tests.integration.containers_support import docker as docker_cli
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

DOCKERFILE = f"""\
ARG BASE={IMAGE}
FROM $BASE AS builder
ARG GREETING=hello
ENV STAGE=one
WORKDIR /src
COPY message.txt ./
RUN echo "$GREETING from $STAGE: $(cat message.txt)" > /src/out.txt \\
 && echo built-in-run

FROM {IMAGE}
ENV APP_HOME=/app
RUN echo runner:x:1234:1234::/app:/bin/sh >> /etc/passwd \\
 && echo runner:x:1234: >> /etc/group
WORKDIR $APP_HOME
COPY --from=builder /src/out.txt greeting.txt
COPY --chown=runner data/ data/
USER runner
ENTRYPOINT ["sh", "-c", "cat greeting.txt data/*.txt; id -u; stat -c %U data/one.txt; ls -a data"]
"""


def write_context(path: Path, dockerfile: str = DOCKERFILE) -> Path:
    """A build context: the Dockerfile, a message, data files and a .dockerignore."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "Dockerfile").write_text(dockerfile)
    (path / "message.txt").write_text("the message")
    (path / "data").mkdir(exist_ok=True)
    (path / "data" / "one.txt").write_text("data one\n")
    (path / "data" / "secret.key").write_text("never copied\n")
    (path / "data" / "skip.txt").write_text("skipped\n")
    (path / ".dockerignore").write_text("data/*.key\ndata/*.txt\n!data/one.txt\n")
    return path


@pytest.fixture
def served(fresh: ServerProcess, busybox_archive: Path) -> ServerProcess:
    """A server of the test's own with the busybox test image loaded."""
    reply = fresh.request("POST", "/v1.44/images/load", body=busybox_archive.read_bytes())
    assert reply.status == 200, reply.body
    return fresh


def classic(
    server: ServerProcess, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``docker build`` with the classic builder (the CLI's default is BuildKit)."""
    result = subprocess.run(
        ["docker", "build", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "DOCKER_HOST": server.uri, "DOCKER_BUILDKIT": "0"},
    )
    if check:
        assert result.returncode == 0, (result.stdout, result.stderr)
    return result


EXPECTED_RUN = "hello from one: the message\ndata one\n1234\nrunner\n.\n..\none.txt\n"


def leftovers(server: ServerProcess) -> tuple[list[object], list[object]]:
    """Containers and dangling images visible to a client after a build."""
    containers = json.loads(server.request("GET", "/v1.44/containers/json?all=1").body)
    dangling = json.loads(
        server.request(
            "GET", "/v1.44/images/json?filters=" + quote(json.dumps({"dangling": ["true"]}))
        ).body
    )
    return containers, dangling


@needs_cli
def test_docker_cli_builds_multistage_image_that_runs(
    served: ServerProcess, tmp_path: Path
) -> None:
    """``DOCKER_BUILDKIT=0 docker build``: ARG, ENV, WORKDIR, COPY --from, RUN, USER,
    ENTRYPOINT and .dockerignore; the image prints what the Dockerfile put there."""
    ctx = write_context(tmp_path / "ctx")
    out = classic(served, "-t", "built:one", str(ctx))
    assert "Step 1/14 : FROM $BASE AS builder" in out.stdout
    assert "built-in-run" in out.stdout
    assert "Successfully tagged built:one" in out.stdout
    run = docker_cli(served, "run", "--rm", "built:one")
    assert run.stdout == EXPECTED_RUN
    [inspect] = json.loads(docker_cli(served, "image", "inspect", "built:one").stdout)
    assert inspect["Config"]["User"] == "runner"
    assert inspect["Config"]["WorkingDir"] == "/app"
    assert inspect["Config"]["Entrypoint"][0] == "sh"
    history = json.loads(served.request("GET", "/v1.44/images/built:one/history").body)
    assert any("ENV APP_HOME=/app" in h["CreatedBy"] for h in history)
    assert leftovers(served) == ([], [])


@needs_cli
def test_unchanged_rebuild_uses_cache_and_change_rebuilds_from_that_step(
    served: ServerProcess, tmp_path: Path
) -> None:
    """A second build uses the cache for every step; editing a copied file rebuilds from there."""
    ctx = write_context(tmp_path / "ctx")
    first = classic(served, "-t", "cached", str(ctx))
    again = classic(served, "-t", "cached", str(ctx))
    steps = again.stdout.count("Step ")
    assert again.stdout.count(" ---> Using cache") == steps - 2  # every step but the two FROMs
    assert " ---> Running in" not in again.stdout
    first_id = first.stdout.split("Successfully built ")[1].split()[0]
    assert f"Successfully built {first_id}" in again.stdout
    (ctx / "data" / "one.txt").write_text("data changed\n")
    changed = classic(served, "-t", "cached", str(ctx))
    before, _, after = changed.stdout.partition("COPY --chown=runner data/ data/")
    # Every step before this COPY but the FROMs; "Step 12/14 : " itself is in ``before``.
    assert before.count(" ---> Using cache") == before.count("Step ") - 3
    assert " ---> Using cache" not in after
    assert "data changed" in docker_cli(served, "run", "--rm", "cached").stdout


@needs_cli
def test_failing_run_reports_exit_code_and_leaves_nothing(
    served: ServerProcess, tmp_path: Path
) -> None:
    """A failing RUN: its status in the stream, ``docker build`` exits with it, no leftovers."""
    ctx = write_context(tmp_path / "ctx", f"FROM {IMAGE}\nRUN echo about to fail; exit 7\n")
    result = classic(served, str(ctx), check=False)
    assert result.returncode == 7, (result.stdout, result.stderr)
    assert "about to fail" in result.stdout
    assert "returned a non-zero code: 7" in result.stderr
    assert leftovers(served) == ([], [])


def test_replaced_build_result_is_a_dangling_image_until_pruned(served: ServerProcess) -> None:
    """A build that takes another build's tag leaves that image ``<none>``: listed as
    dangling (Docker's and Podman's answer), then removed by a dangling prune."""
    first = build_raw(
        served, tar_of({"Dockerfile": f"FROM {IMAGE}\nRUN >file1\n".encode()}), "?t=same"
    )
    again = build_raw(
        served, tar_of({"Dockerfile": f"FROM {IMAGE}\nRUN >file2\n".encode()}), "?t=same"
    )
    assert first[0] == again[0] == 200
    [replaced] = [line["aux"]["ID"] for line in first[1] if "aux" in line]  # type: ignore[union-attr,index]
    _, dangling = leftovers(served)
    assert [image["Id"] for image in dangling] == [replaced]  # type: ignore[index]
    query = quote(json.dumps({"dangling": ["true"]}))
    assert served.request("POST", f"/v1.44/images/prune?filters={query}").status == 200
    assert leftovers(served) == ([], [])


def test_docker_py_builds_and_reports_stream(served: ServerProcess, tmp_path: Path) -> None:
    """docker-py ``images.build(path=..., tag=...)``: the image and its log."""
    ctx = write_context(tmp_path / "ctx")
    client = docker.DockerClient(base_url=served.uri, version="auto")
    try:
        image, logs = client.images.build(path=str(ctx), tag="pybuilt:1")
        assert "pybuilt:1" in image.tags
        assert any("built-in-run" in line.get("stream", "") for line in logs)
        output = client.containers.run("pybuilt:1", remove=True)
        assert output.decode() == EXPECTED_RUN
        with pytest.raises(docker.errors.BuildError) as failed:
            client.images.build(fileobj=io.BytesIO(f"FROM {IMAGE}\nRUN exit 3\n".encode()), rm=True)
        assert "returned a non-zero code: 3" in str(failed.value)
    finally:
        client.close()


@needs_podman
def test_podman_remote_builds(served: ServerProcess, tmp_path: Path) -> None:
    """``podman --remote build``: the image is tagged ``localhost/...`` and runs."""
    ctx = write_context(tmp_path / "ctx")
    home = tmp_path / "home"
    home.mkdir()
    labels = ("--label", "team=a", "--label", "flag")  # sent as a JSON list of KEY[=VALUE]
    result = podman(served, home, "build", "-t", "podbuilt", *labels, str(ctx))
    image_id = result.stdout.strip().splitlines()[-1]
    assert len(image_id) == 64
    inspect = json.loads(served.request("GET", "/v4.0.0/libpod/images/podbuilt/json").body)
    assert inspect["Labels"] == {"team": "a", "flag": ""}
    run = podman(served, home, "run", "--rm", "localhost/podbuilt")
    assert run.stdout == EXPECTED_RUN


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_raw(
    server: ServerProcess, body: bytes, query: str = ""
) -> tuple[int, list[dict[str, object]] | object]:
    reply = server.request(
        "POST", "/v1.44/build" + query, body=body, headers={"Content-Type": "application/x-tar"}
    )
    if reply.status != 200:
        return reply.status, json.loads(reply.body)
    return 200, [json.loads(line) for line in reply.body.splitlines() if line.strip()]


def test_libpod_build_refuses_a_json_body_type_compat_takes_it(served: ServerProcess) -> None:
    """Podman's libpod handler refuses ``Content-Type: application/json`` (400, its cause);
    the compat tree builds whatever the type, as Docker."""
    context = tar_of({"Dockerfile": f"FROM {IMAGE}\n".encode()})
    headers = {"Content-Type": "application/json"}
    refused = served.request("POST", "/v4.0.0/libpod/build", body=context, headers=headers)
    assert refused.status == 400
    assert refused.json()["cause"].startswith("Content-Type: application/json is not supported")
    taken = served.request("POST", "/v1.44/build", body=context, headers=headers)
    assert taken.status == 200 and b"Successfully built" in taken.body


def test_bad_inputs_are_clear_errors(served: ServerProcess) -> None:
    """Syntax error and escaping tar: 400; missing source and unknown stage/image: stream errors."""
    status, body = build_raw(served, tar_of({"Dockerfile": b"FROM x\nFOO bar\n"}))
    assert status == 400 and "unknown instruction: FOO" in body["message"]
    status, body = build_raw(served, tar_of({"Dockerfile": b"FROM x\n", "../evil": b"x"}))
    assert status == 400 and "outside" in body["message"]
    status, lines = build_raw(
        served, tar_of({"Dockerfile": f"FROM {IMAGE}\nCOPY nothere /x\n".encode()})
    )
    assert status == 200 and "file not found in build context" in lines[-1]["error"]
    status, lines = build_raw(
        served, tar_of({"Dockerfile": f"FROM {IMAGE}\nCOPY --from=nostage /a /b\n".encode()})
    )
    assert status == 200 and "error" in lines[-1]
    status, lines = build_raw(served, tar_of({"Dockerfile": b"FROM localhost:1/nothing:here\n"}))
    assert status == 200 and "error" in lines[-1]
    assert leftovers(served) == ([], [])


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose missing")
def test_docker_compose_builds_service_image(served: ServerProcess, tmp_path: Path) -> None:
    """``docker-compose build`` then ``run``: the service's image from its build context."""
    project = tmp_path / "project"
    write_context(project / "app")
    (project / "docker-compose.yml").write_text(
        'version: "3.7"\nservices:\n  app:\n    build: ./app\n    image: composed:latest\n'
    )
    env = {**os.environ, "DOCKER_HOST": served.uri, "COMPOSE_INTERACTIVE_NO_CLI": "1"}

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker-compose", "--no-ansi", "-p", "built", *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    compose("build")
    assert docker_cli(served, "run", "--rm", "composed").stdout == EXPECTED_RUN


@needs_cli
def test_builder_prune_removes_the_cache_and_the_next_build_runs_again(
    served: ServerProcess, tmp_path: Path
) -> None:
    """``POST /build/prune``: a failed build's cached steps go (IDs and bytes reported) and
    the next build runs them again; ``all=1`` also takes the steps below a tagged image."""
    failing = write_context(tmp_path / "ctx", f"FROM {IMAGE}\nRUN echo filler > /f\nRUN exit 1\n")
    assert classic(served, str(failing), check=False).returncode == 1
    reply = served.request("POST", "/v1.44/build/prune")
    report = json.loads(reply.body)
    assert reply.status == 200 and len(report["CachesDeleted"]) == 1, report
    assert report["SpaceReclaimed"] > 0
    again = classic(served, str(failing), check=False)
    assert " ---> Using cache" not in again.stdout
    ctx = write_context(tmp_path / "ok", f"FROM {IMAGE}\nRUN echo filler > /f\nENV X=1\n")
    classic(served, "-t", "pruned", str(ctx))
    report = json.loads(served.request("POST", "/v1.44/build/prune?all=1").body)
    # The RUN's image (taken from the failed build's cache) below the tagged one.
    assert len(report["CachesDeleted"]) == 1, report
    assert docker_cli(served, "run", "--rm", "pruned", "cat", "/f").stdout == "filler\n"
    everything = json.loads(served.request("GET", "/v1.44/images/json?all=1").body)
    assert len(everything) == 2


def test_buildkit_session_is_refused_with_the_way_out(served: ServerProcess) -> None:
    """BuildKit's ``/session`` and ``version=2`` builds: errors that say DOCKER_BUILDKIT=0."""
    session = served.request("POST", "/v1.44/session")
    assert session.status == 404 and "DOCKER_BUILDKIT=0" in json.loads(session.body)["message"]
    status, body = build_raw(served, tar_of({"Dockerfile": b"FROM x\n"}), "?version=2")
    assert status == 400 and "DOCKER_BUILDKIT=0" in body["message"]
    ping = served.request("GET", "/_ping")
    assert ping.headers["Builder-Version"] == "1"


def test_libpod_build_ends_with_the_image_id(served: ServerProcess) -> None:
    """``POST /libpod/build`` (podman-py's call): ``stream`` lines, the bare image ID last."""
    body = tar_of({"Containerfile": f"FROM {IMAGE}\nLABEL a=b\n".encode()})
    reply = served.request(
        "POST",
        "/v4.3.1/libpod/build?t=libpodbuilt&dockerfile=" + quote('["Containerfile"]'),
        body=body,
    )
    lines = [json.loads(line) for line in reply.body.splitlines()]
    assert reply.status == 200
    assert lines[-2] == {"stream": "Successfully tagged localhost/libpodbuilt:latest\n"}
    image_id = lines[-1]["stream"].strip()
    inspect = json.loads(served.request("GET", f"/v4.3.1/libpod/images/{image_id}/json").body)
    assert inspect["Labels"] == {"a": "b"}


def test_scratch_add_archive_onbuild_and_history(served: ServerProcess) -> None:
    """FROM scratch with COPY; ADD of a local tar.gz extracts it; ONBUILD runs in the child;
    history has one entry per step with ``empty_layer`` where no layer was made."""
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        info = tarfile.TarInfo("inner/file.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"inner\n"))
    base = f"FROM {IMAGE}\nONBUILD RUN echo triggered > /trigger\nADD pack.tar.gz /opt/\n"
    status, lines = build_raw(
        served,
        tar_of({"Dockerfile": base.encode(), "pack.tar.gz": packed.getvalue()}),
        "?t=onbuild-base",
    )
    assert status == 200 and "error" not in lines[-1], lines
    child = "FROM onbuild-base\nHEALTHCHECK CMD true\n"
    status, lines = build_raw(served, tar_of({"Dockerfile": child.encode()}), "?t=onbuild-child")
    assert status == 200 and "# Executing 1 build trigger\n" in [x.get("stream") for x in lines]
    run = docker.DockerClient(base_url=served.uri, version="auto")
    try:
        out = run.containers.run(
            "onbuild-child", ["cat", "/trigger", "/opt/inner/file.txt"], remove=True
        )
        assert out == b"triggered\ninner\n"
    finally:
        run.close()
    history = json.loads(served.request("GET", "/v1.44/images/onbuild-child/history").body)
    # Newest first: HEALTHCHECK (no layer), the trigger's RUN, the base's ADD.
    assert [h["Size"] > 0 for h in history[:3]] == [False, True, True]
    scratch = tar_of({"Dockerfile": b"FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": b"alone\n"})
    status, lines = build_raw(served, scratch, "?t=from-scratch")
    assert status == 200 and "error" not in lines[-1], lines
    saved = served.request("GET", "/v1.44/images/from-scratch/get")
    assert saved.status == 200 and b"alone" in saved.body
