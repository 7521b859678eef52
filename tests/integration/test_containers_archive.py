"""``docker cp`` and ``docker export`` through real clients, and hostile uploads.

The docker CLI, docker-py and ``podman --remote`` copy files, directories and
symlinks in and out of running and stopped containers; tars built here try to
write outside the container root and must fail with a 4xx or land inside it.
"""

import base64
import bz2
import gzip
import io
import json
import lzma
import os
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import NotFound

from tests.integration.containers_support import (
    IMAGE,
    mounts_below,
    needs_cli,
    needs_podman,
    podman,
)
from tests.integration.containers_support import docker as docker_cli
from tests.support import Reply, ServerProcess, wait_for

pytestmark = pytest.mark.integration
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27


def make_tree(base: Path) -> Path:
    """A directory with a file, a nested binary file and two symlinks."""
    src = base / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    (src / "link").symlink_to("a.txt")
    (src / "abs").symlink_to("/etc/passwd")
    return src


def assert_same_tree(left: Path, right: Path) -> None:
    """Same names, file contents and symlink targets."""
    names = sorted(p.relative_to(left) for p in left.rglob("*"))
    assert names == sorted(p.relative_to(right) for p in right.rglob("*"))
    for name in names:
        a, b = left / name, right / name
        assert a.is_symlink() == b.is_symlink(), name
        if a.is_symlink():
            assert os.readlink(a) == os.readlink(b), name
        elif a.is_file():
            assert a.read_bytes() == b.read_bytes(), name


def rootfs_dir(server: ServerProcess, container_id: str) -> Path:
    """The container's directory under the server's root (upper, merged...)."""
    return server.root / "containers" / container_id


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_entry(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def link_entry(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    info.mode = 0o777
    return info, None


def put(server: ServerProcess, cid: str, path: str, body: bytes, query: str = "") -> Reply:
    return server.request(
        "PUT",
        f"/v1.44/containers/{cid}/archive?path={path}{query}",
        body=body,
        headers={"Content-Type": "application/x-tar"},
    )


def decode_stat(reply: Reply) -> dict[str, object]:
    header = reply.headers["X-Docker-Container-Path-Stat"]
    return json.loads(base64.b64decode(header, validate=True))


@needs_cli
def test_docker_cp_both_ways_with_a_running_container(box: ServerProcess, tmp_path: Path) -> None:
    """Directories, files and symlinks go in and come back out unchanged."""
    src = make_tree(tmp_path)
    cid = docker_cli(box, "run", "-d", IMAGE, "sleep", "1000").stdout.strip()
    try:
        docker_cli(box, "cp", str(src), f"{cid}:/tmp/")
        docker_cli(box, "cp", str(src / "a.txt"), f"{cid}:/tmp/renamed.txt")
        out = tmp_path / "out"
        out.mkdir()
        docker_cli(box, "cp", f"{cid}:/tmp/src", str(out))
        assert_same_tree(src, out / "src")
        docker_cli(box, "cp", f"{cid}:/tmp/renamed.txt", str(out / "single.txt"))
        assert (out / "single.txt").read_text() == "alpha\n"
        # A symlink is copied as a link; -L follows it (inside the container).
        docker_cli(box, "cp", f"{cid}:/tmp/src/link", str(out / "as-link"))
        assert os.readlink(out / "as-link") == "a.txt"
        docker_cli(box, "cp", "-L", f"{cid}:/tmp/src/link", str(out / "followed"))
        assert (out / "followed").read_text() == "alpha\n"
        # Written into the container's own filesystem (its overlay upper dir).
        written = rootfs_dir(box, cid) / "upper" / "tmp" / "src" / "sub" / "b.bin"
        assert written.read_bytes() == (src / "sub" / "b.bin").read_bytes()
    finally:
        docker_cli(box, "rm", "-f", cid, check=False)


@needs_cli
def test_docker_cp_into_a_stopped_container_and_export(box: ServerProcess, tmp_path: Path) -> None:
    """A created container gets the file before it first runs; export lists it."""
    hello = tmp_path / "hello.txt"
    hello.write_text("hello from the host\n")
    cid = docker_cli(box, "create", IMAGE, "cat", "/etc/hello.txt").stdout.strip()
    try:
        merged = rootfs_dir(box, cid) / "merged"
        docker_cli(box, "cp", str(hello), f"{cid}:/etc/")
        assert str(merged) not in mounts_below(box.base)  # mounted for the copy only
        out = docker_cli(box, "cp", f"{cid}:/etc/hello.txt", "-").stdout
        assert "hello from the host" in out  # a tar on stdout
        assert docker_cli(box, "start", "-a", cid).stdout == "hello from the host\n"
        exported = tmp_path / "export.tar"
        docker_cli(box, "export", "-o", str(exported), cid)
        listing = subprocess.run(
            ["tar", "-tf", str(exported)], capture_output=True, text=True, check=True
        ).stdout.split()
        assert "etc/hello.txt" in listing
        assert "bin/busybox" in listing
        assert "bin/" in listing
        assert str(merged) not in mounts_below(box.base)
    finally:
        docker_cli(box, "rm", "-f", cid, check=False)


def test_docker_py_put_and_get_archive(client: docker.DockerClient, tmp_path: Path) -> None:
    """put_archive writes a tree; get_archive returns it with Docker's stat dict."""
    container = client.containers.create(IMAGE, ["sleep", "1000"])
    mtime = 1_700_000_000
    info, data = file_entry("data/note.txt", b"twelve bytes")
    info.mtime = mtime
    info.mode = 0o640
    link, _ = link_entry("data/to-note", "note.txt", tarfile.SYMTYPE)
    assert container.put_archive("/tmp", tar_of((info, data), (link, None)))
    container.start()
    chunks, stat = container.get_archive("/tmp/data/note.txt")
    assert stat["name"] == "note.txt"
    assert stat["size"] == 12
    assert stat["mode"] == 0o640
    assert stat["mtime"] == "2023-11-14T22:13:20Z"
    assert stat["linkTarget"] == "/tmp/data/note.txt"
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert tar.getnames() == ["note.txt"]
        member = tar.extractfile("note.txt")
        assert member is not None and member.read() == b"twelve bytes"
    _, dir_stat = container.get_archive("/tmp/data")
    assert dir_stat["mode"] & GO_DIR and dir_stat["name"] == "data"
    chunks, link_stat = container.get_archive("/tmp/data/to-note")
    assert link_stat["mode"] & GO_SYMLINK
    assert link_stat["linkTarget"] == "/tmp/data/note.txt"
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        (only,) = tar.getmembers()
        assert only.issym() and only.linkname == "note.txt"
    with pytest.raises(NotFound):
        container.get_archive("/tmp/absent")


def test_docker_py_archive_through_a_stopped_containers_volume(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    """put/get_archive under an anonymous volume's path reach the volume, running or not."""
    container = client.containers.create(
        IMAGE, ["sh", "-c", "cat /vol1/in.txt; echo written > /vol1/out.txt"], volumes=["/vol1"]
    )
    try:
        before = time.time()
        assert container.put_archive("/vol1", tar_of(file_entry("in.txt", b"given\n")))
        window = {"since": int(before), "until": int(time.time()) + 1}
        volume_events = client.events(**window, filters={"type": "volume"}, decode=True)
        actions = {e["Action"] for e in volume_events}  # the volume's create may be in it
        assert not actions & {"mount", "unmount"}  # docker cp is no volume mount (Docker's)
        container.start()
        assert container.wait()["StatusCode"] == 0
        assert container.logs() == b"given\n"
        chunks, stat = container.get_archive("/vol1/out.txt")
        assert stat["name"] == "out.txt" and stat["size"] == len(b"written\n")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile("out.txt")
            assert member is not None and member.read() == b"written\n"
        merged = str(rootfs_dir(box, container.id) / "merged")
        assert not [m for m in mounts_below(box.base) if m.startswith(merged)]
    finally:
        container.remove(v=True, force=True)


def test_a_symlink_over_a_volume_path_keeps_the_mount_inside(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    """A stopped container that turned its volume's parent into a link to a host path:
    the volume is mounted inside its rootfs for ``docker cp``, never on the host."""
    host = tmp_path / "host-target"
    host.mkdir()
    script = f"echo data > /trap/vol/f; mv /trap /moved; ln -s {host} /trap"
    container = client.containers.run(
        IMAGE, ["sh", "-c", script], volumes=["/trap/vol"], detach=True
    )
    try:
        assert container.wait()["StatusCode"] == 0
        chunks, stat = container.get_archive("/trap/vol")
        assert stat["name"] == "vol"
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile("vol/f")
            assert member is not None and member.read() == b"data\n"  # the volume's data
        assert list(host.iterdir()) == []
    finally:
        container.remove(v=True, force=True)


def test_docker_py_archive_through_a_running_containers_volume(
    client: docker.DockerClient,
) -> None:
    """A running container's volume is read and written as the container sees it."""
    container = client.containers.run(
        IMAGE, ["sh", "-c", "echo mine > /vol2/own.txt; sleep 1000"], volumes=["/vol2"], detach=True
    )
    try:
        wait_for(lambda: container.exec_run(["test", "-e", "/vol2/own.txt"]).exit_code == 0, 30)
        assert container.put_archive("/vol2", tar_of(file_entry("in.txt", b"live\n")))
        assert container.exec_run(["cat", "/vol2/in.txt"]).output == b"live\n"
        chunks, stat = container.get_archive("/vol2/own.txt")
        assert stat["size"] == len(b"mine\n")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile("own.txt")
            assert member is not None and member.read() == b"mine\n"
    finally:
        container.remove(v=True, force=True)


def test_export_of_a_running_container_is_its_root_filesystem_alone(
    client: docker.DockerClient,
) -> None:
    """``docker export`` of a running container takes neither its volumes nor /proc, /sys
    (moby exports the base filesystem); ``docker cp`` does see the volume."""
    container = client.containers.run(
        IMAGE,
        ["sh", "-c", "echo vol > /vol3/in-volume.txt; echo fs > /in-rootfs.txt; sleep 1000"],
        volumes=["/vol3"],
        detach=True,
    )
    try:
        wait_for(lambda: container.exec_run(["test", "-e", "/in-rootfs.txt"]).exit_code == 0, 30)
        with tarfile.open(fileobj=io.BytesIO(b"".join(container.export())), mode="r|") as tar:
            names = {member.name.lstrip("./") for member in tar}
        assert "in-rootfs.txt" in names
        assert "vol3/in-volume.txt" not in names
        assert not any(name.startswith(("proc/", "sys/")) for name in names)
        chunks, _ = container.get_archive("/vol3/in-volume.txt")
        assert b"vol\n" in b"".join(chunks)
    finally:
        container.remove(v=True, force=True)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_put_archive_takes_compressed_tars(
    box: ServerProcess, created: str, compress: Callable[[bytes], bytes]
) -> None:
    """PUT .../archive unpacks gzip, bzip2 and xz bodies, as Docker's API documents."""
    body = compress(tar_of(file_entry("packed/in.txt", b"squeezed")))
    assert put(box, created, "/tmp", body).status == 200
    assert in_container(box, created, "/tmp/packed/in.txt") == b"squeezed"


@needs_podman
def test_podman_remote_cp_both_ways(box: ServerProcess, tmp_path: Path) -> None:
    """``podman --remote cp`` of a file and a directory, in and out."""
    src = make_tree(tmp_path)
    home = tmp_path / "home"
    home.mkdir()

    cid = podman(box, home, "run", "-d", IMAGE, "sleep", "1000").stdout.strip()
    try:
        podman(box, home, "cp", str(src), f"{cid}:/tmp/tree")
        podman(box, home, "cp", str(src / "a.txt"), f"{cid}:/tmp/copied.txt")
        out = tmp_path / "out"
        out.mkdir()
        podman(box, home, "cp", f"{cid}:/tmp/tree", str(out / "tree"))
        assert_same_tree(src, out / "tree")
        podman(box, home, "cp", f"{cid}:/tmp/copied.txt", str(out / "copied.txt"))
        assert (out / "copied.txt").read_text() == "alpha\n"
    finally:
        subprocess.run(
            ["podman", "--remote", "--url", box.uri, "rm", "-f", cid],
            capture_output=True,
            check=False,
            env={**os.environ, "HOME": str(home)},
        )


@pytest.fixture
def created(box: ServerProcess) -> Iterator[str]:
    """A created (never started) container on the shared server."""
    reply = box.request(
        "POST",
        "/v1.44/containers/create",
        body=json.dumps({"Image": IMAGE, "Cmd": ["true"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 201, reply.body
    cid = reply.json()["Id"]
    yield cid
    box.request("DELETE", f"/v1.44/containers/{cid}?force=1")


def in_container(server: ServerProcess, cid: str, path: str) -> bytes | None:
    """A file's content read back through the API (None if absent)."""
    reply = server.request("GET", f"/v1.44/containers/{cid}/archive?path={path}")
    if reply.status == 404:
        return None
    assert reply.status == 200, reply.body
    with tarfile.open(fileobj=io.BytesIO(reply.body)) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        assert member is not None
        return member.read()


def test_hostile_tars_never_write_outside_the_container(
    box: ServerProcess, created: str, tmp_path: Path
) -> None:
    """``..``, absolute names, symlink and hard link escapes: 4xx, or written inside."""
    marker = f"podapi-escape-{uuid.uuid4().hex}"
    container_dir = rootfs_dir(box, created)
    outside = [
        Path("/etc") / marker,
        Path("/tmp") / marker,
        Path("/abs") / marker,
        container_dir / "etc" / marker,
        container_dir.parent / marker,
        box.root / marker,
    ]
    passwd = Path("/etc/passwd")
    passwd_before = (passwd.read_bytes(), passwd.stat().st_nlink)

    climbing = put(box, created, "/tmp", tar_of(file_entry(f"../../../../etc/{marker}", b"x")))
    assert climbing.status == 400, climbing.body
    assert json.loads(climbing.body)["response"] == 400

    absolute = put(box, created, "/tmp", tar_of(file_entry(f"/abs/{marker}", b"abs")))
    assert absolute.status == 200, absolute.body
    assert in_container(box, created, f"/tmp/abs/{marker}") == b"abs"

    to_root = put(
        box,
        created,
        "/tmp",
        tar_of(
            link_entry("evil", "/", tarfile.SYMTYPE),
            file_entry(f"evil/etc/{marker}", b"through a link"),
        ),
    )
    assert to_root.status == 200, to_root.body
    assert in_container(box, created, f"/etc/{marker}") == b"through a link"

    up_and_out = put(
        box,
        created,
        "/tmp",
        tar_of(
            link_entry("up", "../../../../..", tarfile.SYMTYPE),
            file_entry(f"up/tmp/{marker}", b"still inside"),
        ),
    )
    assert up_and_out.status == 200, up_and_out.body
    assert in_container(box, created, f"/tmp/{marker}") == b"still inside"

    for target in ("/etc/passwd", "../../../../../../etc/passwd"):
        hard = put(
            box,
            created,
            "/tmp",
            tar_of(link_entry("pw", target, tarfile.LNKTYPE), file_entry("pw", b"overwrite")),
        )
        assert hard.status == 400, (target, hard.body)

    for path in outside:
        assert not path.exists(), path
    assert (passwd.read_bytes(), passwd.stat().st_nlink) == passwd_before


def test_a_start_during_a_copy_into_a_stopped_container_waits_for_it(
    box: ServerProcess,
) -> None:
    """The copy holds the container: the start neither fails nor loses its rootfs mount."""
    reply = box.request(
        "POST",
        "/v1.44/containers/create",
        body=json.dumps({"Image": IMAGE, "Cmd": ["sleep", "1000"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 201, reply.body
    cid = reply.json()["Id"]
    try:
        body = tar_of(*(file_entry(f"big/{i}", os.urandom(4 << 20)) for i in range(16)))
        with socket.socket(socket.AF_UNIX) as copy:
            copy.settimeout(60)
            copy.connect(str(box.sock))
            copy.sendall(
                f"PUT /v1.44/containers/{cid}/archive?path=/tmp HTTP/1.1\r\nHost: d\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            started = box.request("POST", f"/v1.44/containers/{cid}/start")
            assert started.status == 204, started.body
            assert copy.recv(64).startswith(b"HTTP/1.1 200")
        merged = rootfs_dir(box, cid) / "merged"
        assert str(merged) in mounts_below(box.base)
        assert in_container(box, cid, "/tmp/big/15") is not None
    finally:
        box.request("DELETE", f"/v1.44/containers/{cid}?force=1")


def test_a_reader_that_goes_away_leaves_nothing_mounted(box: ServerProcess, created: str) -> None:
    """A stopped container mounted for a download is unmounted when the client hangs up."""
    body = tar_of(*(file_entry(f"many/{i}", os.urandom(1 << 20)) for i in range(64)))
    assert put(box, created, "/tmp", body).status == 200
    merged = str(rootfs_dir(box, created) / "merged")
    with socket.socket(socket.AF_UNIX) as reader:
        reader.settimeout(60)
        reader.connect(str(box.sock))
        reader.sendall(
            f"GET /v1.44/containers/{created}/archive?path=/tmp/many HTTP/1.1\r\n"
            "Host: d\r\n\r\n".encode()
        )
        assert reader.recv(65536).startswith(b"HTTP/1.1 200")
        assert merged in mounts_below(box.base)
    wait_for(lambda: merged not in mounts_below(box.base), timeout=30)
    assert in_container(box, created, "/tmp/many/63") is not None


def test_put_owners_and_overwrite_options(box: ServerProcess, tmp_path: Path) -> None:
    """copyUIDGID gives files to the container's user (the libpod default); the
    no-overwrite option refuses to replace a directory, in either spelling."""
    reply = box.request(
        "POST",
        "/v1.44/containers/create",
        body=json.dumps({"Image": IMAGE, "Cmd": ["true"], "User": "nobody"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 201, reply.body
    cid = reply.json()["Id"]
    try:
        info, data = file_entry("owned", b"x")
        info.uid = info.gid = 4321
        body = tar_of((info, data))
        upper = rootfs_dir(box, cid) / "upper" / "tmp"
        assert put(box, cid, "/tmp", body).status == 200
        assert (upper / "owned").stat().st_uid == 4321
        assert put(box, cid, "/tmp", body, "&copyUIDGID=1").status == 200
        assert (upper / "owned").stat().st_uid == 65534
        assert put(box, cid, "/tmp", body).status == 200
        libpod = box.request("PUT", f"/v4.3.1/libpod/containers/{cid}/archive?path=/tmp", body=body)
        assert libpod.status == 200, libpod.body
        stat = (upper / "owned").stat()
        assert (stat.st_uid, stat.st_gid) == (65534, 65534)
        replace_dir = tar_of(file_entry("etc", b"not a directory"))
        for query in ("&noOverwriteDirNonDir=true", "&nooverwritedirnondir=true"):
            refused = put(box, cid, "/", replace_dir, query)
            assert refused.status == 400, (query, refused.body)
        assert in_container(box, cid, "/etc/passwd") is not None
    finally:
        box.request("DELETE", f"/v1.44/containers/{cid}?force=1")


def test_archive_errors(box: ServerProcess, created: str) -> None:
    """Missing path 404 (HEAD and GET), PUT to a file 400, bad tar 400, unknown container 404."""
    missing = box.request("HEAD", f"/v1.44/containers/{created}/archive?path=/nope")
    assert missing.status == 404
    got = box.request("GET", f"/v4.3.1/libpod/containers/{created}/archive?path=/nope")
    assert got.status == 404
    assert got.json() == {
        "cause": "no such file or directory",
        "message": "/nope: no such file or directory",
        "response": 404,
    }
    to_file = put(box, created, "/etc/passwd", tar_of(file_entry("x", b"x")))
    assert to_file.status == 400, to_file.body
    assert put(box, created, "/absent", tar_of(file_entry("x", b"x"))).status == 404
    corrupt = put(box, created, "/tmp", b"this is not a tar" * 100)
    assert corrupt.status == 400, corrupt.body
    no_path = box.request("HEAD", f"/v1.44/containers/{created}/archive")
    assert no_path.status == 400
    assert box.request("HEAD", "/v1.44/containers/nope/archive?path=/").status == 404
    assert box.request("GET", "/v1.44/containers/nope/export").status == 404
    head = box.request("HEAD", f"/v1.44/containers/{created}/archive?path=/etc/passwd")
    assert head.status == 200
    assert decode_stat(head)["name"] == "passwd"


def test_a_symlink_swapped_in_during_a_copy_is_a_4xx_and_stays_inside(
    box: ServerProcess,
) -> None:
    """The container swaps a directory the archive writes through for a symlink to its
    root and back while copies run: every copy is written inside the container or
    refused with a 4xx (issue 18 saw 500s), and nothing lands on the host."""
    marker = f"podapi-swap-{uuid.uuid4().hex}"
    swapper = (
        "mkdir -p /tmp/race; i=0; while [ $i -lt 100000 ]; do mkdir /tmp/race/d; "
        "rm -rf /tmp/race/d; ln -s / /tmp/race/d; rm /tmp/race/d; i=$((i+1)); done"
    )
    reply = box.request(
        "POST",
        "/v1.44/containers/create",
        body=json.dumps({"Image": IMAGE, "Cmd": ["sh", "-c", swapper]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 201, reply.body
    cid = reply.json()["Id"]
    try:
        assert box.request("POST", f"/v1.44/containers/{cid}/start").status == 204
        body = tar_of(
            *(file_entry(f"d/{marker}/{n}/f", b"x" * 4096) for n in range(300)),
            file_entry(f"d/{marker}.top", b"top"),
        )
        statuses = [put(box, cid, "/tmp/race", body).status for _ in range(40)]
        assert all(status in (200, 400, 404) for status in statuses), statuses
        # The swapper really raced the copies (a finished loop proves nothing).
        state = box.request("GET", f"/v1.44/containers/{cid}/json").json()["State"]
        assert state["Running"], state
    finally:
        box.request("DELETE", f"/v1.44/containers/{cid}?force=1")
    for path in (Path("/") / marker, Path("/") / f"{marker}.top", box.root / marker):
        assert not path.exists(), path
