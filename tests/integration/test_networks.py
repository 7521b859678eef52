"""Networks through real clients and real netavark: DNS by name, published ports, modes.

Every container here runs under runc with a network namespace wired by
netavark; DNS on user networks is aardvark-dns.  The shared server's default
network is its own (see ``tests.support.network_args``).
"""

import json
import os
import shutil
import signal
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from podman import PodmanClient

from tests.hostleaks import interfaces
from tests.integration.containers_support import IMAGE, load_image, needs_cli, podman, process_gone
from tests.integration.containers_support import docker as docker_cli
from tests.support import EventStream, ServerProcess, wait_for

pytestmark = [
    pytest.mark.integration,
    needs_cli,
]

#: Serves ``hello from <hostname>`` on port 80 (busybox httpd).
HTTPD = (
    "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"
)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def _answers(url: str) -> bool:
    try:
        _get(url)
    except OSError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fetch_inside(*target: str) -> str:
    """A shell command that fetches each URL, retrying while the server starts (bounded)."""
    fetches = " && ".join(f"wget -qO- {t}" for t in target)
    return f"for i in $(seq 100); do {fetches} && exit 0; sleep 0.1; done; exit 1"


def test_containers_on_a_user_network_reach_each_other_by_name_and_alias(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    docker_cli(box, "network", "create", "--label", "suite=networks", "talk")
    docker_cli(
        box,
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "talk",
        "--network-alias",
        "www",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    )
    run = docker_cli(
        box,
        "run",
        "--rm",
        "--network",
        "talk",
        IMAGE,
        "sh",
        "-c",
        _fetch_inside("http://web/", "http://www/"),
    )
    web_id = docker_cli(box, "inspect", "-f", "{{.Id}}", "web").stdout.strip()
    assert run.stdout == f"hello from {web_id[:12]}\n" * 2
    # The name resolves to the address inspect shows; the default network has no DNS.
    address = docker_cli(
        box, "inspect", "-f", "{{.NetworkSettings.Networks.talk.IPAddress}}", "web"
    ).stdout.strip()
    lookup = docker_cli(box, "run", "--rm", "--network", "talk", IMAGE, "nslookup", "web")
    assert address and address in lookup.stdout
    default = docker_cli(box, "run", "--rm", IMAGE, "nslookup", "web", check=False)
    assert address not in default.stdout


def test_published_ports_answer_on_loopback(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    port = _free_port()
    docker_cli(
        box,
        "run",
        "-d",
        "--name",
        "pub",
        "-p",
        f"127.0.0.1:{port}:80",
        "--expose",
        "81",
        "-P",
        "-p",
        "127.0.0.1::53/udp",
        IMAGE,
        "sh",
        "-c",
        f"httpd -p 81 -h /etc; {HTTPD}",
    )
    wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), timeout=30)
    assert _get(f"http://127.0.0.1:{port}/").startswith("hello from")
    shown = docker_cli(box, "port", "pub").stdout.splitlines()
    assert f"80/tcp -> 127.0.0.1:{port}" in shown
    # -P gave the exposed port 81 a free host port of its own.
    [exposed] = [line.rpartition(":")[2] for line in shown if line.startswith("81/tcp")]
    assert _get(f"http://127.0.0.1:{exposed}/hostname").strip()
    assert any(line.startswith("53/udp -> 127.0.0.1:") for line in shown)
    container = client.containers.get("pub")
    assert container.ports["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    [listed] = client.api.containers(filters={"name": "pub"})
    assert {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": port, "Type": "tcp"} in listed[
        "Ports"
    ]
    container.remove(force=True)
    wait_for(lambda: not _answers(f"http://127.0.0.1:{port}/"), timeout=10)


def test_network_modes_none_host_and_container(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    none = docker_cli(box, "run", "--rm", "--network", "none", IMAGE, "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in none.stdout.splitlines()] == ["lo"]
    # Podman's default sysctl: unprivileged ICMP sockets in the container's own namespace.
    icmp = docker_cli(box, "run", "--rm", IMAGE, "cat", "/proc/sys/net/ipv4/ping_group_range")
    assert icmp.stdout.split() == ["0", "0"]
    host = docker_cli(box, "run", "--rm", "--network", "host", IMAGE, "ls", "/sys/class/net")
    assert set(host.stdout.split()) == set(os.listdir("/sys/class/net"))
    docker_cli(box, "run", "-d", "--name", "server", IMAGE, "sh", "-c", HTTPD)
    joined = docker_cli(
        box,
        "run",
        "--rm",
        "--network",
        "container:server",
        IMAGE,
        "sh",
        "-c",
        _fetch_inside("http://127.0.0.1/"),
    )
    assert joined.stdout.startswith("hello from")
    assert client.containers.get("server").attrs["HostConfig"]["NetworkMode"] == "bridge"


def test_docker_network_create_inspect_connect_disconnect_rm(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    subnet = f"10.251.{os.getpid() % 256}"
    docker_cli(
        box,
        "network",
        "create",
        "--subnet",
        f"{subnet}.0/24",
        "--gateway",
        f"{subnet}.254",
        "--ip-range",
        f"{subnet}.128/25",
        "--label",
        "tier=back",
        "back",
    )
    [listed] = json.loads(
        docker_cli(box, "network", "ls", "--filter", "label=tier=back", "--format", "json")
        .stdout.strip()
        .join("[]")
    )
    assert listed["Name"] == "back"
    [inspected] = json.loads(docker_cli(box, "network", "inspect", "back").stdout)
    assert inspected["IPAM"]["Options"] is None  # as Docker: none were given
    assert inspected["IPAM"]["Config"] == [
        {
            "Subnet": f"{subnet}.0/24",
            "Gateway": f"{subnet}.254",
            "IPRange": f"{subnet}.128-{subnet}.255",
        }
    ]
    assert inspected["Labels"] == {"tier": "back"}
    mac = docker_cli(
        box,
        "run",
        "--rm",
        "--network",
        "back",
        "--mac-address",
        "02:00:00:00:00:99",
        IMAGE,
        "cat",
        "/sys/class/net/eth0/address",
    )
    assert mac.stdout == "02:00:00:00:00:99\n"
    docker_cli(box, "run", "-d", "--name", "roamer", IMAGE, "sleep", "1000")
    docker_cli(
        box, "network", "connect", "--alias", "db", "--ip", f"{subnet}.200", "back", "roamer"
    )
    links = docker_cli(box, "exec", "roamer", "ip", "-o", "-4", "addr").stdout
    assert f"{subnet}.200/24" in links
    [inspected] = json.loads(docker_cli(box, "network", "inspect", "back").stdout)
    [member] = inspected["Containers"].values()
    assert (member["Name"], member["IPv4Address"]) == ("roamer", f"{subnet}.200/24")
    twice = docker_cli(box, "network", "connect", "back", "roamer", check=False)
    assert twice.returncode != 0 and "already connected" in twice.stderr
    in_use = docker_cli(box, "network", "rm", "back", check=False)
    assert in_use.returncode != 0 and "associated containers" in in_use.stderr
    docker_cli(box, "network", "disconnect", "back", "roamer")
    assert f"{subnet}.200" not in docker_cli(box, "exec", "roamer", "ip", "-o", "addr").stdout
    docker_cli(box, "network", "rm", "back")
    gone = docker_cli(box, "network", "inspect", "back", check=False)
    assert gone.returncode != 0 and "not found" in gone.stderr


def test_internal_network_has_no_way_out(box: ServerProcess, client: docker.DockerClient) -> None:
    docker_cli(box, "network", "create", "--internal", "inner")
    assert docker_cli(box, "network", "inspect", "-f", "{{.Internal}}", "inner").stdout == "true\n"
    routes = docker_cli(box, "run", "--rm", "--network", "inner", IMAGE, "ip", "route").stdout
    assert routes and "default" not in routes
    assert "default via" in docker_cli(box, "run", "--rm", IMAGE, "ip", "route").stdout


def test_network_events(box: ServerProcess, client: docker.DockerClient) -> None:
    events = EventStream(box, {"type": ["network"]})
    try:
        network = client.networks.create("eventful")
        container = client.containers.run(IMAGE, "sleep 1000", detach=True, network="eventful")
        network.disconnect(container)
        container.remove(force=True)
        network.remove()
        seen = [events.next() for _ in range(3)]
    finally:
        events.close()
    # Docker calls a network removal "destroy" (libpod: "remove").  As in Podman (4.3.1
    # and 5), starting and removing the container emit no connect/disconnect of their own.
    assert [e["Action"] for e in seen] == ["create", "disconnect", "destroy"]
    assert {e["Actor"]["ID"] for e in seen} == {network.id}
    assert seen[1]["Actor"]["Attributes"]["container"] == container.id
    assert seen[0]["Actor"]["Attributes"] == {"name": "eventful", "type": "bridge"}


def test_bad_network_input_is_a_clear_4xx(box: ServerProcess, client: docker.DockerClient) -> None:
    subnet = f"10.252.{os.getpid() % 256}.0/24"
    client.networks.create(
        "first", ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
    )
    cases = [
        (
            "POST",
            "/v1.44/networks/create",
            {"Name": "second", "IPAM": {"Config": [{"Subnet": subnet}]}},
            409,
            "already used",
        ),
        ("POST", "/v1.44/networks/create", {"Name": "first"}, 409, "already exists"),
        ("POST", "/v1.44/networks/create", {"Name": "bad name!"}, 400, "invalid network name"),
        (
            "POST",
            "/v1.44/networks/create",
            {"Name": "x", "IPAM": {"Config": [{"Subnet": "10.1"}]}},
            400,
            "invalid subnet",
        ),
        ("POST", "/v1.44/networks/create", {"Name": "x", "Driver": "overlay"}, 400, "driver"),
        ("GET", "/v1.44/networks/nowhere", None, 404, "network not found"),
        ("DELETE", "/v1.44/networks/bridge", None, 409, "cannot be removed"),
        (
            "POST",
            "/v1.44/containers/create",
            {"Image": IMAGE, "HostConfig": {"NetworkMode": "nowhere"}},
            404,
            "network not found",
        ),
        (
            "POST",
            "/v1.44/containers/create",
            {"Image": IMAGE, "HostConfig": {"PortBindings": {"eighty/tcp": [{"HostPort": "80"}]}}},
            400,
            "invalid port",
        ),
        ("POST", "/v1.44/networks/first/connect", {"Container": "nobody"}, 404, "no container"),
        (
            "POST",
            "/v1.44/containers/create",
            {
                "Image": IMAGE,
                "NetworkingConfig": {"EndpointsConfig": {"first": {"MacAddress": "zz"}}},
            },
            400,
            "invalid MAC",
        ),
        (
            "POST",
            "/v5.0.0/libpod/networks/first/update",
            {"adddnsservers": ["x"]},
            400,
            "invalid IP address",
        ),
        (
            "POST",
            "/v5.0.0/libpod/networks/create",
            {"name": "dhcpnet", "ipam_options": {"driver": "dhcp"}},
            400,
            "unsupported ipam driver",
        ),
    ]
    for method, target, body, status, message in cases:
        reply = box.request(
            method, target, body=None if body is None else json.dumps(body).encode()
        )
        assert reply.status == status, (target, body, reply.body)
        error = reply.json()
        assert set(error) == {"cause", "message", "response"}
        assert error["response"] == status and message in error["message"], error


def test_libpod_networks_and_podman_remote(
    box: ServerProcess, client: docker.DockerClient, tmp_path: Path
) -> None:
    created = box.request(
        "POST",
        "/v5.0.0/libpod/networks/create",
        body=json.dumps({"name": "pods", "labels": {"k": "v"}}).encode(),
    ).json()
    assert created["dns_enabled"] and created["driver"] == "bridge"
    assert created["subnets"][0]["gateway"].endswith(".1")
    assert box.request("GET", "/v5.0.0/libpod/networks/pods/exists").status == 204
    assert box.request("GET", "/v5.0.0/libpod/networks/nope/exists").status == 404
    update = {"adddnsservers": ["192.0.2.53"]}
    reply = box.request(
        "POST", "/v5.0.0/libpod/networks/pods/update", body=json.dumps(update).encode()
    )
    assert reply.status == 204, reply.body
    inspected = box.request("GET", "/v5.0.0/libpod/networks/pods/json").json()
    assert inspected["network_dns_servers"] == ["192.0.2.53"]
    if shutil.which("podman"):
        listed = podman(box, tmp_path, "network", "ls", "--format", "{{.Name}}").stdout.split()
        assert "pods" in listed and box.default_network in listed
        podman(box, tmp_path, "network", "create", "--subnet", "10.253.7.0/24", "viapodman")
        shown = json.loads(podman(box, tmp_path, "network", "inspect", "viapodman").stdout)
        assert shown[0]["subnets"][0]["subnet"] == "10.253.7.0/24"
        run = podman(
            box, tmp_path, "run", "--rm", "--network", "viapodman", IMAGE, "ip", "-o", "-4", "addr"
        )
        assert "10.253.7.2/24" in run.stdout
        podman(box, tmp_path, "network", "rm", "viapodman")
        low = _free_port()
        podman(
            box,
            tmp_path,
            "run",
            "-d",
            "--name",
            "ported",
            "-p",
            f"127.0.0.1:{low}:80",
            "-p",
            "127.0.0.1::90-91/udp",
            IMAGE,
            "sleep",
            "1000",
        )
        shown = podman(box, tmp_path, "port", "ported").stdout.splitlines()
        assert shown[0] == f"80/tcp -> 127.0.0.1:{low}"
        assert [line.split(" -> ")[0] for line in shown[1:]] == ["90/udp", "91/udp"]
        podman(box, tmp_path, "rm", "-f", "ported")
    client.containers.run(IMAGE, "sleep 1000", detach=True, network="pods", name="podded")
    removed = box.request("DELETE", "/v5.0.0/libpod/networks/pods?force=true").json()
    assert removed == [{"Name": "pods", "Err": None}]
    assert box.request("GET", "/v5.0.0/libpod/containers/podded/exists").status == 404


def test_podman_py_connects_with_docker_shaped_fields(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    """podman-py posts ``{"Container", "EndpointConfig"}`` to the libpod tree; Go matches
    ``container`` in any case, so do we."""
    network = client.networks.create("pyconnect")
    container = client.containers.run(IMAGE, "sleep 1000", detach=True)
    try:
        with PodmanClient(base_url=f"http+unix://{box.sock}") as podman_py:
            podman_py.networks.get("pyconnect").connect(container.id)
        container.reload()
        assert "pyconnect" in container.attrs["NetworkSettings"]["Networks"]
    finally:
        container.remove(force=True)
        network.remove()


def test_prune_removes_only_unused_networks(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    used = client.networks.create("used")
    client.networks.create("unused", labels={"gone": "yes"})
    client.containers.create(IMAGE, "true", network="used")
    pruned = client.networks.prune(filters={"label": "gone"})
    assert pruned["NetworksDeleted"] == ["unused"]
    names = {n.name for n in client.networks.list()}
    assert "used" in names and "bridge" in names
    assert used.attrs["Name"] == "used"


def test_dual_stack_network(box: ServerProcess, client: docker.DockerClient) -> None:
    prefix = f"fd00:{os.getpid() % 65536:x}:7:"
    docker_cli(box, "network", "create", "--ipv6", "--subnet", f"{prefix}:/64", "dual")
    docker_cli(box, "run", "-d", "--name", "peer6", "--network", "dual", IMAGE, "sh", "-c", HTTPD)
    script = "ip -o addr show eth0 && nslookup peer6 && " + _fetch_inside(f"http://[{prefix}:2]/")
    run = docker_cli(box, "run", "--rm", "--network", "dual", IMAGE, "sh", "-c", script)
    assert f"inet6 {prefix}:3/64" in run.stdout and " inet 172." in run.stdout
    assert f"Address: {prefix}:2" in run.stdout  # aardvark-dns answers AAAA too
    assert run.stdout.endswith("hello from " + client.containers.get("peer6").id[:12] + "\n")
    peer = client.containers.get("peer6").attrs["NetworkSettings"]["Networks"]["dual"]
    assert peer["GlobalIPv6Address"] == f"{prefix}:2" and peer["GlobalIPv6PrefixLen"] == 64


def test_network_outlives_the_server_and_goes_with_the_container(
    start_server: Callable[..., ServerProcess], busybox_archive: Path
) -> None:
    server = start_server()
    load_image(server, busybox_archive)
    docker_cli(server, "network", "create", "lone")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    docker_cli(
        server,
        "run",
        "-d",
        "--name",
        "hermit",
        "--network",
        "lone",
        "-p",
        f"127.0.0.1:{port}:80",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    )
    wait_for(lambda: _answers(url), timeout=30)
    [network] = json.loads(docker_cli(server, "network", "inspect", "lone").stdout)
    bridge = network["Options"]["com.docker.network.bridge.name"]
    state = server.get_json("/v5.0.0/libpod/containers/hermit/json")["State"]
    assert server.terminate() == 0
    assert _answers(url) and bridge in interfaces()  # no server needed to serve

    os.kill(state["Pid"], signal.SIGKILL)
    # conmon's exit command (podapi.cleanup) tears the network down.
    wait_for(process_gone(state["ConmonPid"]), timeout=60)
    assert bridge not in interfaces() and not _answers(url)
    assert list((server.runroot / "netns").iterdir()) == []
    server.start()
    docker_cli(server, "start", "hermit")
    wait_for(lambda: _answers(url), timeout=30)
    docker_cli(server, "rm", "-f", "hermit")
    docker_cli(server, "network", "rm", "lone")
    assert bridge not in interfaces()
