"""The container-cycle floor: a bare ``runc run`` of ``true`` in a busybox bundle.

    .venv/bin/python -m bench.bare_runc [--runs 30] [--seccomp]

Builds a bundle in a temporary directory (the test busybox layer unpacked as
``rootfs``, ``config.json`` from ``runc spec`` running ``true`` without a
terminal, a relative ``cgroupsPath``), then times ``runc run`` to its exit,
p50/p90 after a warm-up.  Its own ``--root`` keeps the state apart from any
server's; ``runc run`` deletes each container when it exits.  No engine does
less to run a container; issue 15 sets podapi's create+start+wait+remove at
most 2x this.  ``--seccomp`` adds the filter every podapi (and Podman) container
gets, Podman's default profile converted as podapi converts it: runc compiles
and loads it on each start, about 25 ms here, so this is the floor for an
engine that keeps Docker's and Podman's default confinement.  Run it under the
integration lock.
"""

import argparse
import asyncio
import io
import itertools
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

from bench.timing import Laps, laps
from podapi.oci import host, seccomp
from podapi.oci.capabilities import DEFAULT_CAPABILITIES
from tests.fixtures.images import busybox_layer


def make_bundle(bundle: Path, *, confined: bool = False) -> None:
    """``rootfs`` from the test busybox layer and ``runc spec``'s config, edited for
    ``true``; ``confined`` adds the default seccomp filter for the default capabilities."""
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(busybox_layer())) as tar:
        tar.extractall(rootfs, filter="tar")
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["args"] = ["true"]
    config["process"]["terminal"] = False
    # Relative: runc nests it under its own cgroup and removes it when the container goes.
    config["linux"]["cgroupsPath"] = "podapi-bench-runc"
    profile = seccomp.load_default() if confined else None
    if profile is not None:
        config["linux"]["seccomp"] = seccomp.convert(
            profile, DEFAULT_CAPABILITIES, go_arch=host.go_arch(), kernel=host.kernel_release()
        )
    config_path.write_text(json.dumps(config))


async def run_true(state: Path, bundle: Path, name: str) -> None:
    """One ``runc run`` of the bundle, to its exit (which must be 0)."""
    process = await asyncio.create_subprocess_exec(
        "runc",
        "--root",
        str(state),
        "run",
        "--bundle",
        str(bundle),
        name,
        stdin=subprocess.DEVNULL,
    )
    if await process.wait() != 0:
        raise SystemExit(f"runc run exited with {process.returncode}")


def measure(runs: int, *, confined: bool = False) -> Laps:
    """Time ``runs`` bare ``runc run``s of ``true`` (after a warm-up one)."""
    with tempfile.TemporaryDirectory(prefix="podapi-bench-runc-", dir="/var/tmp") as tmp:
        bundle, state = Path(tmp) / "bundle", Path(tmp) / "state"
        make_bundle(bundle, confined=confined)
        names = (f"podapi-bench-{n}" for n in itertools.count())
        return asyncio.run(laps(lambda _: run_true(state, bundle, next(names)), runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runc runs (p50 over them)")
    parser.add_argument("--seccomp", action="store_true", help="with the default filter")
    args = parser.parse_args()
    found = measure(args.runs, confined=args.seccomp)
    print(
        f"== bare runc run of `true` ({args.runs} runs{', seccomp' if args.seccomp else ''}): "
        f"p50 {found.p50:.1f} ms, "
        f"p90 {found.p90:.1f} ms"
    )


if __name__ == "__main__":
    main()
