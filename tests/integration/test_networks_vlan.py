"""macvlan and ipvlan networks (netavark's LAN drivers) on a real server, through the libpod
body and Docker's ``Options`` (issue 16).  The parent is one end of a veth pair made for
the test (the kernels we run on may lack the dummy driver); the subnets are documentation
ranges (RFC 5737), on no host route."""

import json
import os
import subprocess
from collections.abc import Iterator

import docker
import pytest

from tests.integration.containers_support import IMAGE
from tests.support import ServerProcess

pytestmark = pytest.mark.integration


def _ip(*args: str, check: bool = True) -> int:
    done = subprocess.run(["ip", *args], check=check, capture_output=True, timeout=30)
    return done.returncode


@pytest.fixture
def parent() -> Iterator[str]:
    """A host interface to hang LAN networks on: a veth pair's end, up; removed afterwards."""
    name = f"podapit{os.getpid() % 100000}"
    _ip("link", "add", name, "type", "veth", "peer", "name", f"{name}p")
    try:
        _ip("link", "set", name, "up")
        _ip("link", "set", f"{name}p", "up")
        yield name
    finally:
        _ip("link", "delete", name)


def _kernel_has(driver: str, parent: str) -> bool:
    """Whether the kernel makes ``driver`` links (some VMs' kernels have no ipvlan)."""
    probe = f"{parent}k"
    if _ip("link", "add", "link", parent, "name", probe, "type", driver, check=False):
        return False
    _ip("link", "delete", probe)
    return True


def _addresses(client: docker.DockerClient, network: str) -> str:
    output = client.containers.run(IMAGE, ["ip", "-4", "addr"], network=network, remove=True)
    return output.decode() if isinstance(output, bytes) else str(output)


def test_a_libpod_macvlan_network_gives_containers_lan_addresses(
    box: ServerProcess, client: docker.DockerClient, parent: str
) -> None:
    """``driver: macvlan`` on ``network_interface``: a container gets the subnet's address."""
    body = {
        "name": "acc-macvlan",
        "driver": "macvlan",
        "network_interface": parent,
        "subnets": [{"subnet": "192.0.2.0/24"}],
    }
    made = box.request("POST", "/v4.0.0/libpod/networks/create", json.dumps(body).encode())
    assert made.status == 200, made.body
    try:
        shown = box.get_json("/v1.41/networks/acc-macvlan")
        assert shown["Driver"] == "macvlan"
        assert "inet 192.0.2.2/24" in _addresses(client, "acc-macvlan")
    finally:
        removed = box.request("DELETE", "/v4.0.0/libpod/networks/acc-macvlan")
        assert removed.status == 200, removed.body


@pytest.mark.parametrize(("driver", "mode"), [("macvlan", "bridge"), ("ipvlan", "l2")])
def test_a_docker_lan_network_takes_its_parent_option(
    client: docker.DockerClient, parent: str, driver: str, mode: str
) -> None:
    """``docker network create -d DRIVER -o parent=IF -o mode=M``: Podman's compat reading."""
    if not _kernel_has(driver, parent):
        pytest.skip(f"this kernel has no {driver} links")
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="198.51.100.0/24")])
    network = client.networks.create(
        f"acc-{driver}", driver=driver, options={"parent": parent, "mode": mode}, ipam=ipam
    )
    try:
        assert network.attrs["Driver"] == driver
        assert "inet 198.51.100.2/24" in _addresses(client, f"acc-{driver}")
    finally:
        network.remove()
