"""What Docker's container create keeps, shows, applies and refuses, through docker-py
on a real server: host config fields, log drivers, endpoint settings, legacy links."""

import json
import os
from pathlib import Path

import docker
import pytest
from docker.errors import APIError

from tests.integration.containers_support import IMAGE, cgroup_file
from tests.support import ServerProcess

pytestmark = pytest.mark.integration


def _error(reply: object) -> tuple[int, str]:
    status = reply.status  # type: ignore[attr-defined]
    body = json.loads(reply.body)  # type: ignore[attr-defined]
    assert set(body) == {"cause", "message", "response"}, body
    return status, body["message"]


def _create(box: ServerProcess, body: dict[str, object], name: str = "") -> object:
    query = f"?name={name}" if name else ""
    return box.request(
        "POST",
        f"/v1.44/containers/create{query}",
        json.dumps({"Image": IMAGE, **body}).encode(),
        {"Content-Type": "application/json"},
    )


def test_host_config_fields_are_kept_shown_and_applied(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    api = client.api
    created = api.create_container(
        IMAGE,
        ["sh", "-c", "env; sleep 1000"],
        environment={"Foo": None, "Other": "one"},
        host_config=api.create_host_config(
            device_cgroup_rules=["c 7:128 rwm"],
            log_config=docker.types.LogConfig(type="json-file", config={"max-file": "3"}),
            nano_cpus=500_000_000,
            cgroupns="private",
            isolation="default",
            volume_driver="foo",
        ),
    )
    container = created["Id"]
    host = api.inspect_container(container)["HostConfig"]
    assert host["DeviceCgroupRules"] == ["c 7:128 rwm"]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3"}}
    assert (host["NanoCpus"], host["CpuQuota"], host["CpuPeriod"]) == (500_000_000, 0, 0)
    assert host["CgroupnsMode"] == "private"
    assert host["Isolation"] == "default"
    assert host["VolumeDriver"] == "foo"
    assert host["Runtime"] == api.info()["DefaultRuntime"]
    env = api.inspect_container(container)["Config"]["Env"]
    assert "Foo" in env and "Other=one" in env  # kept as given ...
    api.start(container)
    pid = api.inspect_container(container)["State"]["Pid"]
    # ... but the process has no variable named Foo
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"Other=one" in environ and not any(e.startswith(b"Foo") for e in environ)
    # half a CPU: Docker's quota over its default period; the device rule is allowed
    assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
    assert cgroup_file(pid, "cpu", "cpu.cfs_period_us") == "100000"
    assert "c 7:128 rwm" in cgroup_file(pid, "devices", "devices.list").splitlines()
    assert os.readlink(f"/proc/{pid}/ns/cgroup") != os.readlink("/proc/self/ns/cgroup")


def test_create_refuses_what_docker_refuses(box: ServerProcess) -> None:
    cases = [
        ({"HostConfig": {"LogConfig": {"Type": "asdf"}}}, "no log driver named 'asdf'"),
        ({"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}, "unknown policy 'sometimes'"),
        ({"HostConfig": {"DeviceCgroupRules": ["x 1:2 rwm"]}}, "invalid device cgroup rule"),
        ({"HostConfig": {"CgroupnsMode": "shared"}}, "invalid cgroup namespace mode"),
        ({"HostConfig": {"Isolation": "hyperv"}}, "invalid isolation"),
        ({"HostConfig": {"NanoCpus": 1_000_000_000, "CpuPeriod": 50000}}, "CPU Period"),
        ({"HostConfig": {"Links": ["nosuch:alias"]}}, "could not get container for nosuch"),
    ]
    for body, message in cases:
        status, text = _error(_create(box, body))
        assert (status, message in text) == (404 if "nosuch" in message else 400, True), text


def test_log_drivers(box: ServerProcess, client: docker.DockerClient) -> None:
    """No driver is json-file (as /info says); none shows none and has no logs to read."""
    api = client.api
    assert api.info()["LoggingDriver"] == "json-file"
    default = api.create_container(IMAGE, ["true"])["Id"]
    assert api.inspect_container(default)["HostConfig"]["LogConfig"]["Type"] == "json-file"
    silent = api.create_container(
        IMAGE,
        ["echo", "hello"],
        host_config=api.create_host_config(log_config=docker.types.LogConfig(type="none")),
    )["Id"]
    assert api.inspect_container(silent)["HostConfig"]["LogConfig"]["Type"] == "none"
    api.start(silent)
    assert api.wait(silent)["StatusCode"] == 0
    with pytest.raises(APIError) as raised:
        api.logs(silent)
    assert raised.value.status_code == 501
    assert "does not support reading" in raised.value.explanation


def test_mac_address_and_endpoint_settings(client: docker.DockerClient) -> None:
    api = client.api
    network = api.create_network("epnet")["Id"]
    container = api.create_container(
        IMAGE,
        ["sh", "-c", "cat /sys/class/net/eth0/address; sleep 1000"],
        host_config=api.create_host_config(network_mode="epnet"),
        networking_config=api.create_networking_config(
            {
                "epnet": api.create_endpoint_config(
                    aliases=["hello"],
                    links=[("upstream", "bar")],
                    link_local_ips=["169.254.8.8"],
                    driver_opt={"key1": "a"},
                    mac_address="02:42:ac:11:00:0a",
                )
            }
        ),
    )["Id"]
    endpoint = api.inspect_container(container)["NetworkSettings"]["Networks"]["epnet"]
    assert endpoint["MacAddress"] == "02:42:ac:11:00:0a"  # shown before the start
    assert endpoint["Links"] == ["upstream:bar"]
    assert endpoint["DriverOpts"] == {"key1": "a"}
    assert endpoint["IPAMConfig"]["LinkLocalIPs"] == ["169.254.8.8"]
    assert endpoint["Aliases"] == ["hello", container[:12]]
    api.start(container)
    endpoint = api.inspect_container(container)["NetworkSettings"]["Networks"]["epnet"]
    assert endpoint["NetworkID"] == network and endpoint["DriverOpts"] == {"key1": "a"}
    # Config.MacAddress: the MAC of the default network's interface
    other = api.create_container(
        IMAGE, ["sh", "-c", "cat /sys/class/net/eth0/address"], mac_address="02:42:ac:11:00:0b"
    )["Id"]
    api.start(other)
    assert api.wait(other)["StatusCode"] == 0
    assert api.logs(other).decode().strip() == "02:42:ac:11:00:0b"
    # connect with a MAC: shown at once
    waiting = api.create_container(IMAGE, ["true"])["Id"]
    api.connect_container_to_network(waiting, "epnet", mac_address="02:42:ac:11:00:02")
    joined = api.inspect_container(waiting)["NetworkSettings"]["Networks"]["epnet"]
    assert joined["MacAddress"] == "02:42:ac:11:00:02"


def test_legacy_links(box: ServerProcess, client: docker.DockerClient) -> None:
    api = client.api
    target = api.create_container(
        IMAGE, ["sleep", "1000"], name="linked-db", environment={"FOO": "1"}, ports=[5432, 80]
    )["Id"]
    parent = api.create_container(
        IMAGE,
        ["sh", "-c", "env; cat /etc/hosts; sleep 1000"],
        name="linker",
        host_config=api.create_host_config(links={"linked-db": "db"}),
    )["Id"]
    assert api.inspect_container(parent)["HostConfig"]["Links"] == ["/linked-db:/linker/db"]
    with pytest.raises(APIError) as raised:  # Docker: the linked container must run
        api.start(parent)
    assert "Cannot link to a non running container" in raised.value.explanation
    api.start(target)
    ip = api.inspect_container(target)["NetworkSettings"]["IPAddress"]
    api.start(parent)
    pid = api.inspect_container(parent)["State"]["Pid"]
    environ = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    for expected in (
        "DB_NAME=/linker/db",
        "DB_ENV_FOO=1",
        f"DB_PORT=tcp://{ip}:80",
        f"DB_PORT_5432_TCP=tcp://{ip}:5432",
        f"DB_PORT_5432_TCP_ADDR={ip}",
        "DB_PORT_5432_TCP_PORT=5432",
        "DB_PORT_5432_TCP_PROTO=tcp",
    ):
        assert expected in environ, environ
    assert not any(e.startswith(("DB_ENV_PATH=", "DB_ENV_HOME=")) for e in environ)
    hosts = Path(f"/proc/{pid}/root/etc/hosts").read_text()
    assert any(
        line.split()[:2] == [ip, "db"] and "linked-db" in line for line in hosts.splitlines()
    )
    # DELETE /containers/{parent}/{alias}?link=1 forgets the link, both containers stay
    assert box.request("DELETE", "/v1.44/containers/linker/db").status == 404  # no link=
    status, message = _error(box.request("DELETE", "/v1.44/containers/linker?link=1"))
    assert (status, "default link name" in message) == (409, True)
    api.remove_container("linker/db", link=True)
    assert api.inspect_container(parent)["HostConfig"]["Links"] is None
    assert {c["Id"] for c in api.containers(all=True)} >= {parent, target}
    status, _ = _error(box.request("DELETE", "/v1.44/containers/linker/db?link=1"))
    assert status == 404


def test_volume_create_answers_what_inspect_shows(client: docker.DockerClient) -> None:
    created = client.api.create_volume("answered")
    assert created["Options"] == {}
    assert created == client.api.inspect_volume("answered")


def test_network_name_with_a_space(box: ServerProcess, client: docker.DockerClient) -> None:
    """Docker's name rule on the compat tree: netavark wires a container up on it."""
    api = client.api
    network = api.create_network("test 01")["Id"]
    assert api.inspect_network("test 01")["Id"] == network
    container = api.create_container(
        IMAGE,
        ["sleep", "1000"],
        ports=[80],
        host_config=api.create_host_config(network_mode="test 01", port_bindings={80: None}),
    )["Id"]
    api.start(container)
    settings = api.inspect_container(container)["NetworkSettings"]
    assert settings["Networks"]["test 01"]["IPAddress"]
    assert settings["Ports"]["80/tcp"][0]["HostPort"]
    api.remove_container(container, force=True)
    api.remove_network("test 01")
    status, message = _error(
        box.request("POST", "/v5.0.0/libpod/networks/create", json.dumps({"name": "a b"}).encode())
    )
    assert (status, "invalid network name" in message) == (400, True)  # Podman's rule there
    status, _ = _error(
        box.request("POST", "/v1.44/networks/create", json.dumps({"Name": "bad name!"}).encode())
    )
    assert status == 400
