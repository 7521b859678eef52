"""Docker create fields with pure logic: device cgroup rules, legacy link variables,
the new host config fields' decoding and the engine's checks."""

from typing import Any

import pytest

from podapi.engine.bundle import link_env
from podapi.engine.containers import check_spec
from podapi.engine.containerspec import ContainerSpec, Ulimit
from podapi.errors import InvalidArgument
from podapi.http.call import BadRequest
from podapi.http.compat.createbody import decode_create
from podapi.oci.spec import SpecInputs, device_cgroup_rule, generate


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("c 7:128 rwm", {"allow": True, "type": "c", "major": 7, "minor": 128, "access": "rwm"}),
        ("b 8:* r", {"allow": True, "type": "b", "major": 8, "access": "r"}),
        ("a *:* m", {"allow": True, "type": "a", "access": "m"}),
    ],
)
def test_device_cgroup_rule(text: str, rule: dict[str, Any]) -> None:
    assert device_cgroup_rule(text) == rule


@pytest.mark.parametrize("text", ["c 7:128", "x 1:2 rwm", "c 7:128 rwx", "c7:128 rwm", ""])
def test_device_cgroup_rule_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid device cgroup rule format"):
        device_cgroup_rule(text)


def test_device_rules_follow_the_default_deny() -> None:
    spec = generate(
        SpecInputs(rootfs="/r", args=["sh"], device_rules=[device_cgroup_rule("c 7:128 rwm")])
    )
    devices = spec["linux"]["resources"]["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    assert devices[-1] == {"allow": True, "type": "c", "major": 7, "minor": 128, "access": "rwm"}


def test_link_env_as_docker() -> None:
    env = link_env(
        "my-db",
        "/web/my-db",
        "10.88.0.5",
        ["5432/tcp", "53/udp", "53/tcp", "8000/tcp", "8001/tcp"],
        ["PATH=/bin", "HOME=/root", "FOO=1", "BARE"],
    )
    assert env[0] == "MY_DB_PORT=tcp://10.88.0.5:53"  # lowest port, tcp first
    assert env[1:5] == [
        "MY_DB_PORT_8000_TCP_START=tcp://10.88.0.5:8000",
        "MY_DB_PORT_8000_TCP_ADDR=10.88.0.5",
        "MY_DB_PORT_8000_TCP_PORT_START=8000",
        "MY_DB_PORT_8000_TCP_PORT_END=8001",
    ]
    assert env[5:9] == [
        "MY_DB_PORT_53_TCP=tcp://10.88.0.5:53",
        "MY_DB_PORT_53_TCP_ADDR=10.88.0.5",
        "MY_DB_PORT_53_TCP_PORT=53",
        "MY_DB_PORT_53_TCP_PROTO=tcp",
    ]
    assert "MY_DB_PORT_53_UDP=udp://10.88.0.5:53" in env
    assert env[-2:] == ["MY_DB_NAME=/web/my-db", "MY_DB_ENV_FOO=1"]


def _decode(body: dict[str, Any]) -> ContainerSpec:
    return decode_create({"Image": "x", **body}, None)


def test_host_config_fields_kept() -> None:
    spec = _decode(
        {
            "MacAddress": "02:42:ac:11:00:0a",
            "HostConfig": {
                "DeviceCgroupRules": ["c 7:128 rwm"],
                "LogConfig": {"Type": "json-file", "Config": {"max-file": "3", "max-size": "1k"}},
                "NanoCpus": 250_000_000,
                "CgroupnsMode": "private",
                "Isolation": "default",
                "VolumeDriver": "foo",
                "Links": ["db:alias"],
            },
            "NetworkingConfig": {
                "EndpointsConfig": {
                    "net": {
                        "Links": ["a:b"],
                        "DriverOpts": {"k": "v"},
                        "IPAMConfig": {"LinkLocalIPs": ["169.254.8.8"]},
                    }
                }
            },
        }
    )
    assert spec.device_cgroup_rules == ("c 7:128 rwm",)
    assert (spec.log_driver, dict(spec.log_options), spec.log_max_size) == (
        "json-file",
        {"max-file": "3", "max-size": "1k"},
        1024,
    )
    assert (spec.nano_cpus, spec.resources.cpu_quota, spec.resources.cpu_period) == (
        250_000_000,
        25_000,
        100_000,
    )
    assert (spec.cgroupns_mode, spec.isolation, spec.volume_driver) == ("private", "default", "foo")
    assert (spec.mac_address, spec.links) == ("02:42:ac:11:00:0a", ("db:alias",))
    (endpoint,) = spec.networks
    assert endpoint.links == ("a:b",) and dict(endpoint.driver_opts) == {"k": "v"}
    assert endpoint.link_local_ips == ("169.254.8.8",)


@pytest.mark.parametrize(
    "host",
    [
        {"NanoCpus": 1_000_000_000, "CpuQuota": 5000},
        {"NanoCpus": 1_000_000_000, "CpuPeriod": 5000},
        {"LogConfig": {"Config": {"max-file": 3}}},
        {"DeviceCgroupRules": 5},
    ],
)
def test_host_config_fields_refused_by_the_decoder(host: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        _decode({"HostConfig": host})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            ContainerSpec(image="x", log_driver="asdf"),
            "logger: no log driver named 'asdf' is registered",
        ),
        (ContainerSpec(image="x", log_driver="journald"), "no log driver named 'journald'"),
        (ContainerSpec(image="x", device_cgroup_rules=("c 1 r",)), "invalid device cgroup rule"),
        (ContainerSpec(image="x", cgroupns_mode="shared"), "invalid cgroup namespace mode"),
        (ContainerSpec(image="x", isolation="hyperv"), "invalid isolation 'hyperv'"),
        (ContainerSpec(image="x", nano_cpus=10**15), "Range of CPUs is from 0.01"),
        (ContainerSpec(image="x", links=(":alias",)), "invalid link"),
        # Ulimits were only checked when the bundle was written, so a bad one made a
        # container that could never start.
        (ContainerSpec(image="x", ulimits=(Ulimit("nofiles", 1, 1),)), "invalid ulimit type"),
        (ContainerSpec(image="x", ulimits=(Ulimit("nofile", -2, 1),)), "negative value"),
        (
            ContainerSpec(image="x", ulimits=(Ulimit("nproc", 20, 10),)),
            "soft limit must be less than or equal to hard limit: 20 > 10",
        ),
        (
            ContainerSpec(image="x", ulimits=(Ulimit("core", -1, 10),)),
            "soft limit must be less than or equal to hard limit: -1 > 10",
        ),
    ],
)
def test_check_spec_refuses_as_docker(spec: ContainerSpec, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check_spec(spec)


def test_check_spec_takes_a_tiny_cpu_share_as_docker() -> None:
    """NanoCpus under 0.01 CPU passes create (Docker and Podman); only over NCPU is refused."""
    assert check_spec(ContainerSpec(image="x", nano_cpus=500_000)).nano_cpus == 500_000


@pytest.mark.parametrize("driver", ["", "json-file", "k8s-file", "none"])
def test_log_drivers_we_serve(driver: str) -> None:
    assert check_spec(ContainerSpec(image="x", log_driver=driver)).log_driver == driver


def test_create_fields_match_in_any_case_as_go() -> None:
    """``TmpFs``, ``hostconfig``, ``cmd``: Go's decoder matches struct fields in any case
    (Podman's REST suite sends ``TmpFs``); exact keys win."""
    spec = decode_create(
        {
            "image": "x",
            "cmd": ["df"],
            "Cmd": ["exact"],
            "hostconfig": {"TmpFs": {"/t": "rw"}, "BINDS": ["/a:/b"]},
        },
        None,
    )
    assert (spec.image, spec.command) == ("x", ("exact",))
    assert sorted((m.type, m.destination) for m in spec.mounts) == [
        ("bind", "/b"),
        ("tmpfs", "/t"),
    ]


def test_check_spec_takes_ulimits_up_to_unlimited() -> None:
    ulimits = (Ulimit("nofile", 10, -1), Ulimit("RLIMIT_CORE", -1, -1), Ulimit("nproc", 5, 5))
    assert check_spec(ContainerSpec(image="x", ulimits=ulimits)).ulimits == ulimits
