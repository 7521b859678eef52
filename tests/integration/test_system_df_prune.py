"""``docker system df`` / ``podman system df`` and system prune on a populated server.

The server holds images used and unused, tagged and dangling (sharing a base layer),
a running and an exited container, named and anonymous volumes in use and not, and a
user network in use and one not.  The prunes must leave exactly what is in use, and
the space they report must be the bytes of the layer, blob, writable-layer and volume
files that went (measured on disk before the prune).
"""

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.images import BuiltImage, busybox_layer, layer_tar
from tests.integration.containers_support import docker, needs_cli, needs_podman, podman
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

BASE = busybox_layer()
CHILD_LAYER = layer_tar({"child.txt": b"c" * 30_000})
UNUSED_LAYER = layer_tar({"unused.txt": b"u" * 50_000})
OLD_LAYER = layer_tar({"old.txt": b"o" * 70_000})
NEW_LAYER = layer_tar({"new.txt": b"n" * 20_000})


def _load(server: ServerProcess, image: BuiltImage, tag: str) -> None:
    reply = server.request("POST", "/v1.44/images/load", body=image.docker_archive([tag]))
    assert reply.status == 200, reply.body


class Populated:
    """What :func:`populate` made."""

    def __init__(self) -> None:
        self.base = BuiltImage(layers=[BASE])
        self.child = BuiltImage(layers=[BASE, CHILD_LAYER], cmd=["true"])
        self.unused = BuiltImage(layers=[BASE, UNUSED_LAYER])
        self.dangling = BuiltImage(layers=[BASE, OLD_LAYER])
        self.retagged = BuiltImage(layers=[BASE, NEW_LAYER])
        self.running = ""
        self.exited = ""
        self.running_anon = ""
        self.spare_anon = ""


def populate(server: ServerProcess) -> Populated:
    made = Populated()
    _load(server, made.base, "acc-busybox:latest")
    _load(server, made.child, "acc-child:latest")
    _load(server, made.unused, "acc-unused:latest")
    _load(server, made.dangling, "acc-retag:latest")
    _load(server, made.retagged, "acc-retag:latest")  # the first loses its name: dangling
    docker(server, "network", "create", "used-net")
    docker(server, "network", "create", "spare-net")
    docker(server, "volume", "create", "used-vol")
    made.running = docker(
        server,
        *("run", "-d", "--name", "runner", "--network", "used-net"),
        *("-v", "used-vol:/u", "-v", "/anon", "acc-busybox"),
        *("sh", "-c", "head -c 40000 /dev/zero > /u/f; head -c 9000 /dev/zero > /rw; sleep 600"),
    ).stdout.strip()
    made.exited = docker(
        server,
        *("run", "--name", "done-one", "acc-child"),
        *("sh", "-c", "head -c 25000 /dev/zero > /big"),
    ).stdout.strip()
    made.exited = docker(server, "inspect", "-f", "{{.Id}}", "done-one").stdout.strip()
    # A container that fills a named and an anonymous volume, then goes without -v:
    # both volumes stay, unused.
    docker(
        server,
        *("run", "--name", "filler", "-v", "spare-vol:/s", "-v", "/anon", "acc-busybox"),
        *("sh", "-c", "head -c 60000 /dev/zero > /s/f; head -c 15000 /dev/zero > /anon/f"),
    )
    mounts = json.loads(docker(server, "inspect", "-f", "{{json .Mounts}}", "filler").stdout)
    made.spare_anon = next(m["Name"] for m in mounts if m["Destination"] == "/anon")
    docker(server, "rm", "filler")
    mounts = json.loads(docker(server, "inspect", "-f", "{{json .Mounts}}", "runner").stdout)
    made.running_anon = next(m["Name"] for m in mounts if m["Destination"] == "/anon")
    return made


def _tree_size(path: Path) -> int:
    """Bytes of the regular files below ``path``, hard links once (what ``du -b`` sums)."""
    seen, total = set(), 0
    for directory, _, files in os.walk(path):
        for name in files:
            info = os.lstat(os.path.join(directory, name))
            if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def _entries(directory: Path) -> list[Path]:
    return list(directory.iterdir()) if directory.is_dir() else []


def removable_files(root: Path) -> dict[Path, int]:
    """Every layer dir, blob, container writable layer and volume's data, with its bytes."""
    found: dict[Path, int] = {}
    for layer in _entries(root / "storage" / "layers"):
        found[layer] = _tree_size(layer)
    for blob in _entries(root / "storage" / "blobs" / "sha256"):
        found[blob] = blob.stat().st_size
    for container in _entries(root / "containers"):
        if (container / "upper").is_dir():
            found[container / "upper"] = _tree_size(container / "upper")
    for volume in _entries(root / "volumes"):
        if (volume / "_data").is_dir():
            found[volume / "_data"] = _tree_size(volume / "_data")
    return found


def freed(before: dict[Path, int]) -> int:
    """The bytes of what ``before`` listed and is gone now."""
    return sum(size for path, size in before.items() if not path.exists())


def human_size(size: float) -> str:
    """go-units ``HumanSize`` (both CLIs print sizes with it)."""
    units = ["B", "kB", "MB", "GB", "TB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.4g}{units[i]}"


def inventory(server: ServerProcess) -> dict[str, set[str]]:
    """Every object of each kind, via the API."""
    return {
        "images": {i["Id"] for i in server.get_json("/v1.44/images/json?all=1")},
        "containers": {c["Id"] for c in server.get_json("/v1.44/containers/json?all=1")},
        "volumes": {v["Name"] for v in server.get_json("/v1.44/volumes")["Volumes"]},
        "networks": {n["Name"] for n in server.get_json("/v1.44/networks")},
    }


def _rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def _summary(text: str) -> dict[str, list[str]]:
    """``docker/podman system df``: TYPE -> [TOTAL, ACTIVE, SIZE, RECLAIMABLE]."""
    rows = _rows(text)
    assert rows[0] == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], rows
    return {row[0]: row[1:] for row in rows[1:]}


def _section(text: str, title: str) -> list[list[str]]:
    """The table under ``title`` in ``system df -v`` output, header first."""
    part = text.split(title, 1)[1].strip().split("\n\n")[0]
    return _rows(part)


def _check_docker_df_json(server: ServerProcess, made: Populated) -> dict[str, Any]:
    df = server.get_json("/v1.44/system/df")
    base, child = len(BASE), len(CHILD_LAYER)
    layers = [BASE, CHILD_LAYER, UNUSED_LAYER, OLD_LAYER, NEW_LAYER]
    assert df["LayersSize"] == sum(len(layer) for layer in layers)
    by_id = {i["Id"]: i for i in df["Images"]}
    assert set(by_id) == {
        i.id for i in (made.base, made.child, made.unused, made.dangling, made.retagged)
    }
    assert by_id[made.base.id]["SharedSize"] == base
    assert by_id[made.base.id]["Size"] == base
    assert by_id[made.base.id]["Containers"] == 1
    assert by_id[made.base.id]["RepoTags"] == ["acc-busybox:latest"]
    assert by_id[made.child.id]["Size"] == base + child
    assert by_id[made.child.id]["SharedSize"] == base
    assert by_id[made.child.id]["Containers"] == 1
    assert by_id[made.dangling.id]["RepoTags"] == []
    assert by_id[made.unused.id]["Containers"] == 0
    containers = {c["Id"]: c for c in df["Containers"]}
    runner = containers[made.running]
    assert runner["Names"] == ["/runner"]
    assert runner["Image"] == "acc-busybox"
    assert runner["SizeRw"] >= 9000
    assert runner["SizeRootFs"] == runner["SizeRw"] + base
    assert {m.get("Name") for m in runner["Mounts"]} == {"used-vol", made.running_anon}
    assert containers[made.exited]["SizeRw"] >= 25000
    volumes = {v["Name"]: v for v in df["Volumes"]}
    assert volumes["used-vol"]["UsageData"] == {"Size": 40000, "RefCount": 1}
    assert volumes["spare-vol"]["UsageData"] == {"Size": 60000, "RefCount": 0}
    assert volumes[made.spare_anon]["UsageData"] == {"Size": 15000, "RefCount": 0}
    assert volumes["used-vol"]["Driver"] == "local"
    assert volumes["used-vol"]["Mountpoint"].endswith("/volumes/used-vol/_data")
    assert df["BuildCache"] == []
    return df


@needs_cli
def test_docker_system_df_and_prune(fresh: ServerProcess) -> None:
    made = populate(fresh)
    df = _check_docker_df_json(fresh, made)

    summary = _summary(docker(fresh, "system", "df").stdout)
    used_unique = sum(i["Size"] - i["SharedSize"] for i in df["Images"] if i["Containers"])
    reclaimable = df["LayersSize"] - used_unique
    percent = reclaimable * 100 // df["LayersSize"]
    assert summary["Images"] == [
        "5",
        "2",
        human_size(df["LayersSize"]),
        f"{human_size(reclaimable)} ({percent}%)",
    ]
    assert summary["Containers"][:2] == ["2", "1"]
    assert summary["Local Volumes"][:3] == ["4", "2", human_size(40000 + 60000 + 15000)]
    assert summary["Local Volumes"][3].startswith(human_size(60000 + 15000) + " (")
    assert summary["Build Cache"][:3] == ["0", "0", "0B"]
    assert not any("-" in cell for row in summary.values() for cell in row)

    verbose = docker(fresh, "system", "df", "-v").stdout
    images = _section(verbose, "Images space usage:")
    assert images[0][:3] == ["REPOSITORY", "TAG", "IMAGE ID"]
    repos = {(row[0], row[1]) for row in images[1:]}
    assert ("acc-busybox", "latest") in repos
    assert ("acc-child", "latest") in repos
    assert ("<none>", "<none>") in repos
    containers = _section(verbose, "Containers space usage:")
    names = {row[-1]: row for row in containers[1:]}
    assert set(names) == {"runner", "done-one"}
    assert names["runner"][1] == "acc-busybox"
    assert names["runner"][3] == "2"  # LOCAL VOLUMES: used-vol and the anonymous one
    volumes = {row[0]: row for row in _section(verbose, "Local Volumes space usage:")[1:]}
    assert volumes["used-vol"][1:] == ["1", human_size(40000)]
    assert volumes["spare-vol"][1:] == ["0", human_size(60000)]

    # Only the kinds asked for (API >= 1.42).
    only = fresh.get_json("/v1.44/system/df?type=volume")
    assert only["Images"] is None and only["Containers"] is None
    assert len(only["Volumes"]) == 4
    assert fresh.request("GET", "/v1.44/system/df?type=nonsense").status == 400

    before_files = removable_files(fresh.root)
    before = inventory(fresh)
    result = docker(fresh, "system", "prune", "-af", "--volumes")
    after = inventory(fresh)
    assert after["images"] == {made.base.id}
    assert after["containers"] == {made.running}
    # API >= 1.42: docker prunes anonymous volumes only; the named unused one stays.
    assert after["volumes"] == {"used-vol", made.running_anon, "spare-vol"}
    assert after["networks"] == before["networks"] - {"spare-net"}
    gone = freed(before_files)
    assert gone > 25000 + 15000 + len(UNUSED_LAYER)
    assert f"Total reclaimed space: {human_size(gone)}" in result.stdout, result.stdout


@needs_podman
def test_podman_system_df_and_prune(fresh: ServerProcess, tmp_path: Path) -> None:
    made = populate(fresh)
    summary = _summary(podman(fresh, tmp_path, "system", "df").stdout)
    assert summary["Images"][:2] == ["5", "2"]
    assert summary["Containers"][:2] == ["2", "1"]
    assert summary["Local Volumes"][0] == "4"
    assert summary["Local Volumes"][2:] == [
        human_size(40000 + 60000 + 15000),
        f"{human_size(60000 + 15000)} (65%)",
    ]
    verbose = podman(fresh, tmp_path, "system", "df", "-v").stdout
    containers = _section(verbose, "Containers space usage:")
    assert {row[-1] for row in containers[1:]} == {"runner", "done-one"}
    volumes = {row[0]: row for row in _section(verbose, "Local Volumes space usage:")[1:]}
    assert volumes["spare-vol"][1:] == ["0", human_size(60000)]
    images = _section(verbose, "Images space usage:")
    rows = {row[2][:12]: row for row in images[1:]}
    child = rows[made.child.id.split(":")[1][:12]]
    assert child[0] == "localhost/acc-child" or child[0].endswith("/acc-child")
    assert child[-1] == "1"

    reply = fresh.request(
        "POST", "/v5.4.0/libpod/system/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D"
    )
    assert reply.status == 400, reply.body

    before_files = removable_files(fresh.root)
    before = inventory(fresh)
    result = podman(fresh, tmp_path, "system", "prune", "-af", "--volumes")
    after = inventory(fresh)
    assert after["images"] == {made.base.id}
    assert after["containers"] == {made.running}
    # Podman prunes named volumes too.
    assert after["volumes"] == {"used-vol", made.running_anon}
    assert after["networks"] == before["networks"] - {"spare-net"}
    gone = freed(before_files)
    assert gone > 25000 + 60000 + 15000 + len(UNUSED_LAYER)
    assert f"Total reclaimed space: {human_size(gone)}" in result.stdout, result.stdout
    assert made.exited[:12] in result.stdout


@pytest.mark.parametrize(
    "target",
    [
        '/v1.44/images/prune?filters={"dangling":["maybe"]}',
        '/v1.44/images/prune?filters={"reference":["x"]}',
        '/v1.44/containers/prune?filters={"status":["exited"]}',
        '/v1.44/networks/prune?filters={"dangling":["true"]}',
        '/v1.44/volumes/prune?filters={"driver":["local"]}',
        '/v5.4.0/libpod/containers/prune?filters={"name":["x"]}',
        '/v5.4.0/libpod/system/prune?filters={"reference":["x"]}',
        "/v5.4.0/libpod/system/prune?filters=notjson",
        "/v1.44/build/prune?keep-storage=lots",
    ],
)
def test_prune_bad_filters_are_400(server: ServerProcess, target: str) -> None:
    reply = server.request("POST", target.replace('"', "%22"))
    assert reply.status == 400, reply.body
    assert set(reply.json()) == {"cause", "message", "response"}


def test_build_prune_reports_nothing_to_free(server: ServerProcess) -> None:
    reply = server.request("POST", "/v1.44/build/prune?all=1&keep-storage=0")
    assert reply.status == 200, reply.body
    assert reply.json() == {"CachesDeleted": [], "SpaceReclaimed": 0}


@needs_cli
def test_docker_prunes_read_the_cli_filters_and_report_freed_bytes(fresh: ServerProcess) -> None:
    base = BuiltImage(layers=[BASE])
    kept = BuiltImage(layers=[BASE, UNUSED_LAYER], config_extra={"Labels": {"keep": "yes"}})
    gone = BuiltImage(layers=[BASE, CHILD_LAYER])
    _load(fresh, base, "acc-busybox:latest")
    _load(fresh, kept, "acc-kept:latest")
    _load(fresh, gone, "acc-gone:latest")
    for name, label in (("labelled", "team=a"), ("other", "team=b")):
        docker(
            fresh,
            "run",
            "--name",
            name,
            "--label",
            label,
            "acc-busybox",
            "sh",
            "-c",
            "head -c 12000 /dev/zero > /f",
        )

    before = removable_files(fresh.root)
    pruned = docker(fresh, "container", "prune", "-f", "--filter", "label=team=a").stdout
    assert {c["Names"][0] for c in fresh.get_json("/v1.44/containers/json?all=1")} == {"/other"}
    assert f"Total reclaimed space: {human_size(freed(before))}" in pruned
    assert freed(before) >= 12000

    # -a sends dangling=false: every image no container uses, here those without the label.
    before = removable_files(fresh.root)
    pruned = docker(fresh, "image", "prune", "-af", "--filter", "label!=keep").stdout
    left = {i["Id"] for i in fresh.get_json("/v1.44/images/json")}
    assert left == {base.id, kept.id}  # acc-busybox is used by "other"
    assert f"Total reclaimed space: {human_size(freed(before))}" in pruned
    assert freed(before) >= len(CHILD_LAYER)
    assert docker(fresh, "image", "prune", "-af", "--filter", "until=1h").returncode == 0
