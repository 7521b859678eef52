"""Podman's REST API suite (``test/apiv2`` of containers/podman) against podapi (issue 16).

    flock /tmp/podapi-integration.lock \\
        .venv/bin/python -m bench.apiv2.run --source /path/to/podman [FILE-PATTERN...]

``--source`` is a directory holding ``test/apiv2`` of a Podman tag (4.3.1: ``git archive
v4.3.1 test/apiv2 | tar -x -C DIR``).  Patterns select ``.at`` files as ``test-apiv2``
does (``01 10 20``); the default is the set issue 16 measures: 01-45 and 60.  Needs
``curl``, ``jq``, ``file``, ``openssl``, ``skopeo``, ``podman`` (the remote client) and
``socat`` (``apt-get install socat``; CI installs none of this: CI does not run it).
The script:

1. builds busybox-made stand-ins of the images the suite names
   (``quay.io/libpod/alpine_labels``, ``testimage``, ``alpine``, ``busybox``, Docker
   Hub's ``alpine`` and ``busybox``), starts a loopback registry, pushes them there and
   gives the server a ``registries.conf`` sending ``quay.io`` and ``docker.io`` to it;
2. starts ``twistd -n podapi`` with temporary storage and networks of its own (default
   network ``podman`` on bridge ``dpy0``, 10.251.0.0/24, pool 10.252.0.0/16: the same
   as ``bench.dockerpy_suite``, never run beside it);
3. bridges 127.0.0.1:PORT to the server's socket with ``socat`` (``test-apiv2`` speaks
   TCP and reuses a listener it finds on ``PODMAN_SERVICE_PORT``), and runs
   ``test-apiv2`` with ``PODMAN`` set to ``bench/apiv2/bin/podman`` (the set-up calls go
   to ``podman --remote``; ``start_registry`` runs the host's ``docker-registry``) and
   ``bench/apiv2/bin`` first on ``PATH`` (an ``htpasswd`` stand-in);
4. prints per-file passed/failed counts and each failing check, marking the ones
   ``bench/apiv2/expected-failures.md`` lists;
5. removes what the run made and reports what is left on the host.

Containers run for real: run it under the shared integration lock, as above.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.dockerpy_suite import Interrupted, cleanup, images, prepare, start_server
from tests.fixtures.images import BuiltImage
from tests.fixtures.registry import Registry, free_port
from tests.support import ServerProcess

HERE = Path(__file__).resolve().parent
TOOLS = ["curl", "jq", "file", "openssl", "skopeo", "podman", "socat"]
#: Issue 16's set: every file up to 45, and 60 (the rest are other issues' features).
DEFAULT_FILES = ["01", "10", "12", "15", "20", "22", "23", "25", "26", "27", "30", "35"]
DEFAULT_FILES += ["40", "44", "45", "60"]
RESULT = re.compile(r"^(ok|not ok) \d+ \[(?P<file>[^\]]+)\] (?P<name>.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def stand_ins() -> dict[str, BuiltImage]:
    """Registry path -> image, for every image name files 01-60 use."""
    built = images()
    alpine = built["alpine:latest"]
    labelled = BuiltImage(
        layers=alpine.layers,
        cmd=["/bin/sh"],
        config_extra={"Labels": {"PODMAN": "/usr/bin/podman", "RUN": "/usr/bin/podman run"}},
    )

    def testimage(tag: str) -> BuiltImage:
        return BuiltImage(
            layers=alpine.layers, cmd=["/bin/sh"], config_extra={"Labels": {"tag": tag}}
        )

    return {
        "quay.io/libpod/alpine_labels:latest": labelled,
        "quay.io/libpod/alpine:latest": alpine,
        "quay.io/libpod/busybox:latest": built["busybox:latest"],
        "quay.io/libpod/testimage:20200929": testimage("20200929"),
        "quay.io/libpod/testimage:20210610": testimage("20210610"),
        "docker.io/library/alpine:latest": alpine,
        "docker.io/library/busybox:latest": built["busybox:latest"],
    }


def push_stand_ins(registry: Registry, work: Path) -> None:
    """Each stand-in as a docker-archive, copied to ``<registry>/<its full name>``."""
    for name, image in stand_ins().items():
        archive = work / (name.replace("/", "_").replace(":", "_") + ".tar")
        archive.write_bytes(image.docker_archive([name]))
        subprocess.run(
            [
                *("skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"),
                f"docker-archive:{archive}",
                f"docker://{registry.host}/{name}",
            ],
            check=True,
            timeout=120,
        )


def registries_conf(registry: Registry, path: Path) -> Path:
    """``quay.io`` and ``docker.io`` from the loopback registry; both searched, as upstream;
    the ``alpine`` and ``busybox`` aliases of containers-common's ``shortnames.conf``."""
    path.write_text(
        'unqualified-search-registries = ["docker.io", "quay.io"]\n'
        + "".join(
            f'\n[[registry]]\nprefix = "{host}"\nlocation = "{registry.host}/{host}"\n'
            "insecure = true\n"
            for host in ("docker.io", "quay.io")
        )
        + '\n[aliases]\n"alpine" = "docker.io/library/alpine"\n'
        '"busybox" = "docker.io/library/busybox"\n'
    )
    return path


def expected_failures() -> list[re.Pattern[str]]:
    """The checks ``expected-failures.md`` lists: each ``- `pattern``` line, a piece of a
    check's name in which ``*`` stands for any text (IDs, ports)."""
    text = (HERE / "expected-failures.md").read_text()
    return [
        re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
        for pattern in re.findall(r"^- `([^`]+)`", text, flags=re.MULTILINE)
    ]


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_suite(args: argparse.Namespace, server: ServerProcess, work: Path) -> list[str]:
    """``test-apiv2`` through a socat bridge; returns its output lines."""
    port = free_port()
    bridge = subprocess.Popen(
        ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"UNIX-CONNECT:{server.sock}"]
    )
    conf = work / "containers.conf"  # ``podman system connection`` writes here, not /etc
    conf.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODMAN", "CONTAINER"))}
    env |= {
        "PODMAN": str(HERE / "bin" / "podman"),
        "PODAPI_URL": server.uri,
        "PODMAN_SERVICE_PORT": str(port),
        "PATH": f"{HERE / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        "TMPDIR": str(work),
        "CONTAINERS_CONF": str(conf),
    }
    script = args.source / "test" / "apiv2" / "test-apiv2"
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            if time.monotonic() > deadline:
                raise RuntimeError("socat is not listening")
            time.sleep(0.05)
        print(f"+ test-apiv2 {' '.join(args.files)} (port {port})", flush=True)
        proc = subprocess.Popen(
            ["bash", str(script), *args.files],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        with open(work / "test-apiv2.out", "w") as out:
            for raw in proc.stdout:
                line = ANSI.sub("", raw)
                out.write(line)
                if args.verbose:
                    print(line, end="")
                lines.append(line.rstrip("\n"))
        proc.wait(timeout=args.suite_timeout)
    finally:
        bridge.terminate()
        bridge.wait(timeout=10)
    return lines


def report(lines: list[str]) -> int:
    """Per-file passed/failed and each failing check; returns the unexpected failures."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    failures: list[tuple[str, str, list[str]]] = []
    known = expected_failures()
    for index, line in enumerate(lines):
        match = RESULT.match(line)
        if not match:
            continue
        file, name = match["file"], match["name"]
        if line.startswith("ok"):
            counts[file]["passed"] += 1
            continue
        counts[file]["failed"] += 1
        detail = [d for d in lines[index + 1 : index + 4] if d.startswith("#")]
        failures.append((file, name, detail))
    print(f"\n{'file':<22} passed  failed")
    total_passed = total_failed = 0
    for file in sorted(counts):
        passed, failed = counts[file]["passed"], counts[file]["failed"]
        total_passed += passed
        total_failed += failed
        print(f"{file:<22} {passed:>6}  {failed:>6}")
    print(f"{'total':<22} {total_passed:>6}  {total_failed:>6}")
    unexpected = 0
    if failures:
        print("\nfailing checks ([known]: listed in expected-failures.md):")
    for file, name, detail in failures:
        mark = "known" if any(k.search(f"[{file}] {name}") for k in known) else "NEW"
        unexpected += mark == "NEW"
        print(f"  [{mark}] [{file}] {name}")
        for item in detail:
            print(f"        {item[:300]}")
    print(f"\n{unexpected} failing checks not in expected-failures.md")
    return unexpected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="holds test/apiv2")
    parser.add_argument("--suite-timeout", type=int, default=3600, help="seconds for all")
    parser.add_argument("--log-level", default="info", help="the server's --log-level")
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: temporary)")
    parser.add_argument("-v", "--verbose", action="store_true", help="echo the suite's output")
    parser.add_argument("files", nargs="*", default=DEFAULT_FILES, help="test-apiv2 patterns")
    args = parser.parse_args()
    args.source = args.source.resolve()
    if not (args.source / "test" / "apiv2" / "test-apiv2").exists():
        parser.error(f"{args.source} has no test/apiv2/test-apiv2")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        parser.error(f"missing tools: {' '.join(missing)} (apt-get install socat jq ...)")

    work, keep, before = prepare(args.workdir, "apiv2-suite-")
    registry = Registry(work / "registry-images")
    server: ServerProcess | None = None
    status = 1
    try:
        registry.start()
        push_stand_ins(registry, work)
        conf = registries_conf(registry, work / "registries.conf")
        server = start_server(work, conf, "podman", args.log_level)  # the suite's name
        print(f"podapi on {server.uri}; log {server.log}; registry {registry.host}", flush=True)
        started = time.monotonic()
        lines = run_suite(args, server, work)
        print(f"\ntest-apiv2 ran {time.monotonic() - started:.0f}s")
        status = 1 if report(lines) else 0
    except (KeyboardInterrupt, Interrupted) as exc:
        print(f"\ninterrupted ({type(exc).__name__} {exc}): cleaning up", flush=True)
        status = 130
    finally:
        status = cleanup(server, registry, work, before, keep) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
