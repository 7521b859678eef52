"""docker-py's own integration suite against a podapi server (issue 11's measurement).

    flock /tmp/podapi-integration.lock \\
        .venv/bin/python -m bench.dockerpy_suite --source /path/to/docker-py [-k EXPR]

``--source`` is a checkout of docker-py (tag 7.1.0): its ``tests/integration`` is not
in the PyPI package.  Its tests run with the source tree's own ``docker`` package (so
library and tests are the same release) and need ``pytest-timeout``, ``paramiko`` and
``websocket-client`` in this interpreter.  The script:

1. builds the images the suite expects (``alpine:3.10``, ``alpine:latest``,
   ``busybox:latest``, ``hello-world:latest``) from the host's static busybox;
2. starts a loopback registry, pushes them there with skopeo, and gives the server a
   ``registries.conf`` whose ``docker.io`` entry points at it, so Docker Hub names
   are pulled from the loopback registry; then pre-pulls them through the server;
3. starts ``twistd -n podapi`` with temporary storage and a default network, subnet,
   pool and bridge names of its own (``podman-dpy``, ``dpy0``, 10.251.0.0/24,
   10.252.0.0/16: apart from the project's tests, 10.250.0.0/16 and 172.16.0.0/12);
4. runs docker-py's pytest on its 17 modules outside swarm, services, secrets,
   configs, plugins and nodes with ``DOCKER_HOST`` and ``DOCKER_TEST_API_VERSION``
   (1.41 by default: Podman 4.3.1's, the version of issue 11's comparison), a
   per-test timeout and ``--junitxml``, and prints per-module counts and each failing
   test with its one-line error;
5. removes what the run made (containers, networks, volumes through the API), stops
   the server and the registry, unmounts what is left under its directory, and
   reports bridges, firewall rules or mounts still on the host; also when
   interrupted.

Containers run for real (runc, conmon, netavark): run it under the shared
integration lock, as above, because the project's tests check the host for leaks.
Not collected by pytest (it lives in ``bench/``); CI does not run it.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from types import FrameType

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import unmount_below
from tests.fixtures.images import BUSYBOX, BuiltImage, busybox_layer, layer_tar
from tests.fixtures.registry import Registry
from tests.hostleaks import firewall_rules, interfaces, mount_points
from tests.support import ServerProcess

#: Modules left out: they need a swarm, plugins from Docker Hub, or swarm secrets/configs.
EXCLUDED = {
    "api_swarm_test",
    "api_service_test",
    "api_secret_test",
    "api_config_test",
    "api_plugin_test",
    "models_services_test",
    "models_swarm_test",
    "models_nodes_test",
}
#: This server's networks: nothing the project's tests or a default Podman use.
NETWORK_ARGS = [
    "--default-network",
    "podman-dpy",
    "--default-bridge",
    "dpy0",
    "--default-subnet",
    "10.251.0.0/24",
    "--subnet-pool",
    "10.252.0.0/16",
    "--bridge-prefix",
    "dpy",
]
#: Firewall rules that are ours to remove: netavark's per-network chains and our subnets.
_OUR_RULES = re.compile(r"NETAVARK-(DN-)?[0-9A-F]{8,}|\b10\.25[12]\.|\bdpy\d")
API = "/v1.41"
#: What docker-py's tests import beyond the library: module -> package.
NEEDED = {
    "pytest_timeout": "pytest-timeout",
    "paramiko": "paramiko",
    "websocket": "websocket-client",
}


#: Alpine's users and groups (tests exec as ``postgres``) and directories (``/var/opt``).
ALPINE_PASSWD = """\
root:x:0:0:root:/root:/bin/ash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
adm:x:3:4:adm:/var/adm:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
mail:x:8:12:mail:/var/mail:/sbin/nologin
operator:x:11:0:operator:/root:/sbin/nologin
postgres:x:70:70::/var/lib/postgresql:/bin/sh
guest:x:405:100:guest:/dev/null:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
"""
ALPINE_GROUP = """\
root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
adm:x:4:root,adm,daemon
mail:x:12:mail
postgres:x:70:
users:x:100:games
nogroup:x:65533:
nobody:x:65534:
"""
ALPINE_DIRS = [
    "media",
    "mnt",
    "opt",
    "run",
    "sbin",
    "srv",
    "lib",
    "usr/lib",
    "usr/local/bin",
    "usr/sbin",
    "usr/share",
    "var/cache",
    "var/empty",
    "var/lib",
    "var/local",
    "var/lock",
    "var/log",
    "var/mail",
    "var/opt",
    "var/spool",
    "var/tmp",
]


class Interrupted(Exception):
    """SIGTERM or SIGHUP arrived: unwind and clean up."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def applets() -> list[str]:
    """Every applet of the host's busybox, so commands the tests run all exist."""
    listed = subprocess.run(
        [BUSYBOX, "--list"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    return sorted({name for name in listed if "/" not in name and name != "busybox"})


def images() -> dict[str, BuiltImage]:
    """The four images docker-py's suite uses, as ``repository:tag`` -> image.

    ``alpine:3.10`` is the suite's ``TEST_IMG``; both alpines are busybox with
    Alpine's release files (distinct images, as on Docker Hub); ``hello-world``
    prints its greeting and exits.
    """
    base = busybox_layer(applets())

    def alpine(version: str) -> BuiltImage:
        release = layer_tar(
            files={
                "etc/passwd": ALPINE_PASSWD.encode(),
                "etc/group": ALPINE_GROUP.encode(),
                "etc/alpine-release": f"{version}\n".encode(),
                "etc/os-release": (
                    f'NAME="Alpine Linux"\nID=alpine\nVERSION_ID={version}\n'
                    f'PRETTY_NAME="Alpine Linux v{version}"\n'
                ).encode(),
            },
            dirs=ALPINE_DIRS,
            modes={"var/tmp": 0o1777},
        )
        return BuiltImage(layers=[base, release], cmd=["/bin/sh"])

    return {
        "alpine:3.10": alpine("3.10.9"),
        "alpine:latest": alpine("3.20.0"),
        "busybox:latest": BuiltImage(layers=[base], cmd=["sh"]),
        "hello-world:latest": BuiltImage(layers=[base], cmd=["echo", "Hello from Docker!"]),
    }


def push_images(registry: Registry, work: Path) -> list[str]:
    """Write each image as a docker-archive and copy it to ``library/<name>`` in the registry."""
    names = []
    for name, image in images().items():
        archive = work / (name.replace(":", "_") + ".tar")
        archive.write_bytes(image.docker_archive([name]))
        registry.push(archive, f"library/{name}")
        names.append(name)
    return names


def registries_conf(registry: Registry, path: Path) -> Path:
    """A registries.conf sending Docker Hub (``docker.io``) to the loopback registry."""
    path.write_text(
        'unqualified-search-registries = ["docker.io"]\n\n'
        "[[registry]]\n"
        'prefix = "docker.io"\n'
        f'location = "{registry.host}"\n'
        "insecure = true\n"
    )
    return path


def pull(server: ServerProcess, name: str) -> None:
    """Pull ``name`` through the server (from the loopback registry); fail loudly."""
    repository, tag = name.rsplit(":", 1)
    query = urllib.parse.urlencode({"fromImage": repository, "tag": tag})
    reply = server.request("POST", f"{API}/images/create?{query}", timeout=120)
    lines = [json.loads(line) for line in reply.body.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line or "errorDetail" in line]
    if reply.status != 200 or errors:
        raise RuntimeError(f"pull {name}: {reply.status} {reply.body[-500:]!r}")
    server.get_json(f"{API}/images/{name}/json")


def modules(source: Path, only: list[str]) -> list[str]:
    """The integration modules to run, relative to the source tree."""
    found = sorted((source / "tests" / "integration").glob("*_test.py"))
    chosen = [p for p in found if p.stem not in EXCLUDED and (not only or p.stem in only)]
    return [str(p.relative_to(source)) for p in chosen]


def run_pytest(args: argparse.Namespace, server: ServerProcess, work: Path, junit: Path) -> int:
    """docker-py's pytest in a child process, bounded; returns its exit status."""
    docker_config = work / "docker-config"
    docker_config.mkdir(exist_ok=True)
    # docker-py keeps contexts next to the config file it finds, or in the working
    # directory (the source tree) when there is none.
    (docker_config / "config.json").write_text("{}\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DOCKER_", "PYTEST_")) and key != "PYTHONPATH"
    }
    env |= {
        "DOCKER_HOST": server.uri,
        "DOCKER_TEST_API_VERSION": args.api_version,
        # No credentials or contexts of whoever runs this.
        "DOCKER_CONFIG": str(docker_config),
        # The source tree's ``docker`` package, the release its tests were written for.
        "PYTHONPATH": str(args.source),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:twisted",  # pytest-twisted from our virtualenv: not wanted here
        "--timeout",
        str(args.test_timeout),
        "--junitxml",
        str(junit),
        "-o",
        "junit_family=xunit2",
        "-q",
        *(["-k", args.k] if args.k else []),
        *args.pytest_args,
        *modules(args.source, args.module),
    ]
    print("+", " ".join(argv), flush=True)
    proc = subprocess.Popen(argv, cwd=args.source, env=env)
    try:
        return proc.wait(timeout=args.suite_timeout)
    except subprocess.TimeoutExpired:
        print(f"docker-py's suite still running after {args.suite_timeout}s: stopping it")
        return -1
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # pytest writes its report on SIGINT
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def report(junit: Path) -> tuple[int, int, int]:
    """Print per-module passed/failed/errors/skipped and each failure; return totals."""
    if not junit.exists():
        print("no junit report")
        return 0, 0, 0
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    problems: list[tuple[str, str, str]] = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        classname = case.get("classname", "")
        parts = classname.split(".")
        module = next((p for p in parts if p.endswith("_test")), classname)
        owner = parts[parts.index(module) + 1 :] if module in parts else []
        test_id = "::".join([module, *owner, case.get("name", "")])
        kinds = {child.tag: child for child in case}
        if "skipped" in kinds:
            counts[module]["skipped"] += 1
            continue
        if "failure" not in kinds and "error" not in kinds:
            counts[module]["passed"] += 1
        for kind, label in (("failure", "failed"), ("error", "errors")):
            if kind in kinds:
                counts[module][label] += 1
                message = (kinds[kind].get("message") or "").strip().splitlines()
                problems.append((label, test_id, (message[0] if message else "")[:240]))
    width = max((len(m) for m in counts), default=10)
    print(f"\n{'module':<{width}}  passed  failed  errors  skipped")
    totals = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for module in sorted(counts):
        row = counts[module]
        for key in totals:
            totals[key] += row[key]
        print(
            f"{module:<{width}}  {row['passed']:>6}  {row['failed']:>6}"
            f"  {row['errors']:>6}  {row['skipped']:>7}"
        )
    print(
        f"{'total':<{width}}  {totals['passed']:>6}  {totals['failed']:>6}"
        f"  {totals['errors']:>6}  {totals['skipped']:>7}"
    )
    if problems:
        print("\nfailing tests:")
        for label, test_id, message in problems:
            print(f"  [{label}] {test_id}: {message}")
    return totals["passed"], totals["failed"], totals["errors"]


def remove_leftovers(server: ServerProcess) -> None:
    """Remove every container, network and volume the run left (the server must run)."""
    server.remove_containers()
    for network in server.get_json(f"{API}/networks"):
        if network["Name"] in ("bridge", "host", "none", server.default_network):
            continue
        reply = server.request("DELETE", f"{API}/networks/{network['Id']}", timeout=60)
        if reply.status not in (204, 404):
            print(f"cannot remove network {network['Name']}: {reply.status} {reply.body!r}")
    volumes = server.get_json(f"{API}/volumes").get("Volumes") or []
    for volume in volumes:
        name = urllib.parse.quote(volume["Name"], safe="")
        reply = server.request("DELETE", f"{API}/volumes/{name}?force=1", timeout=60)
        if reply.status not in (204, 404):
            print(f"cannot remove volume {volume['Name']}: {reply.status} {reply.body!r}")


#: Interfaces, firewall rules and mount points on the host.
HostState = tuple[set[str], set[str], set[str]]


def host_leaks(
    before_interfaces: set[str], before_rules: set[str], before_mounts: set[str]
) -> list[str]:
    """Bridges, veths, firewall rules and mounts of ours still on the host."""
    new_interfaces = interfaces() - before_interfaces
    left = sorted(i for i in new_interfaces if i.startswith(("dpy", "veth")))
    left += sorted(r for r in firewall_rules() - before_rules if _OUR_RULES.search(r))
    left += sorted(mount_points() - before_mounts)
    return left


def prepare(workdir: Path | None, prefix: str) -> tuple[Path, bool, HostState]:
    """Before a suite: its work directory (kept when given), whether to keep it, what
    is on the host now (for :func:`host_leaks`); SIGTERM and SIGHUP unwind from here on."""
    work = (workdir or Path(tempfile.mkdtemp(prefix=prefix))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    before = (interfaces(), firewall_rules(), mount_points())
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    return work, workdir is not None, before


def start_server(work: Path, conf: Path, default_network: str, log_level: str) -> ServerProcess:
    """``twistd -n podapi`` on ``NETWORK_ARGS`` (its default network renamed
    ``default_network``) with the registries.conf ``conf``; started."""
    env = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf)}
    server = ServerProcess(work / "server", timeout="0", env=env)
    networks = [default_network if arg == "podman-dpy" else arg for arg in NETWORK_ARGS]
    server.args = [*networks, "--log-level", log_level]
    server.default_network = default_network
    return server.start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="docker-py checkout (7.1.0)")
    parser.add_argument("--api-version", default="1.41", help="DOCKER_TEST_API_VERSION")
    parser.add_argument("--test-timeout", type=int, default=120, help="seconds per test")
    parser.add_argument("--suite-timeout", type=int, default=3600, help="seconds for all")
    parser.add_argument(
        "--module", action="append", default=[], help="run only this module (repeatable)"
    )
    parser.add_argument("-k", help="pytest -k expression")
    parser.add_argument("--log-level", default="info", help="the server's --log-level")
    parser.add_argument(
        "--workdir", type=Path, help="keep logs and the junit report here (default: temporary)"
    )
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    args.source = args.source.resolve()
    if not (args.source / "tests" / "integration" / "conftest.py").exists():
        parser.error(f"{args.source} has no tests/integration: not a docker-py source tree")
    for module, package in NEEDED.items():
        if subprocess.run([sys.executable, "-c", f"import {module}"], check=False).returncode:
            parser.error(f"docker-py's tests need {package}: pip install {package}")

    work, keep, before = prepare(args.workdir, "dockerpy-suite-")
    junit = work / "junit.xml"
    junit.unlink(missing_ok=True)

    registry = Registry(work / "registry")
    server: ServerProcess | None = None
    status = 1
    try:
        registry.start()
        names = push_images(registry, work)
        conf = registries_conf(registry, work / "registries.conf")
        server = start_server(work, conf, "podman-dpy", args.log_level)
        print(f"podapi on {server.uri}; log {server.log}; registry {registry.host}", flush=True)
        for name in names:
            pull(server, name)
        started = time.monotonic()
        code = run_pytest(args, server, work, junit)
        print(f"\npytest exit status {code} after {time.monotonic() - started:.0f}s")
        _passed, failed, errors = report(junit)
        status = 0 if code == 0 and not failed and not errors else 1
    except (KeyboardInterrupt, Interrupted) as exc:
        print(f"\ninterrupted ({type(exc).__name__} {exc}): cleaning up", flush=True)
        report(junit)
        status = 130
    finally:
        status = cleanup(server, registry, work, before, keep) or status
    return status


def cleanup(
    server: ServerProcess | None,
    registry: Registry,
    work: Path,
    before: HostState,
    keep: bool,
) -> int:
    """Remove everything the run made; non-zero when something is left on the host."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup must finish
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if server is not None:
        try:
            stopped = server.proc is None or server.proc.poll() is not None
            if stopped and server.has_containers():
                server.start()
            if server.proc is not None and server.proc.poll() is None:
                remove_leftovers(server)
        except Exception as exc:  # report and go on: the rest must still be cleaned
            print(f"cleanup through the API failed: {exc!r}")
        server.stop()
        server.kill()
    registry.stop()
    unmount_below(work)
    for name in interfaces() - before[0]:
        if name.startswith("dpy"):  # a bridge only our server can have made
            subprocess.run(["ip", "link", "delete", name], check=False, timeout=30)
    leaks = host_leaks(*before)
    if leaks:
        print("LEFT ON THE HOST:\n  " + "\n  ".join(leaks))
    if server is not None:
        shutil.rmtree(server.root, ignore_errors=True)
        shutil.rmtree(server.runroot, ignore_errors=True)
    if keep:
        print(f"logs and junit report kept in {work}")
    else:
        for path in (work / "server" / "server.log", work / "junit.xml"):
            if path.exists():
                print(f"(removing {path}; pass --workdir to keep it)")
        shutil.rmtree(work, ignore_errors=True)
    return 2 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
