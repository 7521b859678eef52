"""OCI spec generation, seccomp conversion, capability and rlimit rules (pure, no runc)."""

import json
import os
import resource
from pathlib import Path
from typing import Any

import pytest

from podapi.errors import InvalidArgument
from podapi.oci import capabilities, rlimits, seccomp
from podapi.oci.spec import (
    INIT_PATH,
    MASKED_PATHS,
    READONLY_PATHS,
    Resources,
    SpecInputs,
    exec_process,
    generate,
)

PROFILE_PATH = "/usr/share/containers/seccomp.json"
needs_profile = pytest.mark.skipif(
    not os.path.exists(PROFILE_PATH), reason="containers-common seccomp profile not installed"
)

#: Podman 4.3.1's built-in capability list (containers/common ``DefaultCapabilities``).
PODMAN_14 = (
    *capabilities.DEFAULT_CAPABILITIES,
    "CAP_AUDIT_WRITE",
    "CAP_MKNOD",
    "CAP_NET_RAW",
)


def _inputs(**kwargs: Any) -> SpecInputs:
    values: dict[str, Any] = {"rootfs": "/var/lib/podapi/merged", "args": ["sh"], "rlimits": []}
    values.update(kwargs)
    return SpecInputs(**values)


def _profile() -> dict[str, Any]:
    profile = seccomp.load_default((PROFILE_PATH,))
    assert profile is not None
    return dict(profile)


def _rules_for(converted: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [rule for rule in converted["syscalls"] if name in rule["names"]]


# --- spec.generate ---------------------------------------------------------------------


def test_defaults_follow_podman() -> None:
    """A default spec has Podman's version, root, process, namespaces and path lists."""
    spec = generate(_inputs(hostname="0123456789ab", env=["PATH=/bin"]))
    assert spec["ociVersion"] == "1.0.2-dev"
    assert spec["root"] == {"path": "/var/lib/podapi/merged", "readonly": False}
    assert spec["hostname"] == "0123456789ab"
    process = spec["process"]
    assert process["terminal"] is False
    assert process["args"] == ["sh"]
    assert process["env"] == ["PATH=/bin"]
    assert process["cwd"] == "/"
    assert process["user"] == {"uid": 0, "gid": 0, "umask": 0o022}
    assert "noNewPrivileges" not in process
    assert "oomScoreAdj" not in process
    assert "apparmorProfile" not in process
    assert "selinuxLabel" not in process
    caps = process["capabilities"]
    assert set(caps) == {"bounding", "effective", "permitted"}
    for value in caps.values():
        assert value == list(capabilities.DEFAULT_CAPABILITIES)
    linux = spec["linux"]
    assert [ns["type"] for ns in linux["namespaces"]] == ["pid", "network", "ipc", "uts", "mount"]
    assert all("path" not in ns for ns in linux["namespaces"])
    assert linux["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    assert linux["maskedPaths"] == list(MASKED_PATHS)
    assert linux["readonlyPaths"] == list(READONLY_PATHS)
    assert "/proc/kcore" in linux["maskedPaths"]
    assert "/proc/sys" in linux["readonlyPaths"]
    for absent in ("seccomp", "cgroupsPath", "sysctl", "devices"):
        assert absent not in linux
    assert "annotations" not in spec
    json.dumps(spec)


def test_process_fields() -> None:
    """User, groups, umask, cwd, terminal, NoNewPrivileges, OOM score and rlimits go verbatim."""
    limits = [{"type": "RLIMIT_NOFILE", "hard": 100, "soft": 50}]
    spec = generate(
        _inputs(
            args=["/bin/app", "--flag"],
            cwd="/srv",
            uid=1000,
            gid=100,
            additional_gids=[10, 20],
            umask=0o077,
            terminal=True,
            no_new_privileges=True,
            oom_score_adj=500,
            rlimits=limits,
            capabilities=["CAP_KILL"],
        )
    )
    process = spec["process"]
    assert process["args"] == ["/bin/app", "--flag"]
    assert process["cwd"] == "/srv"
    assert process["user"] == {"uid": 1000, "gid": 100, "umask": 0o077, "additionalGids": [10, 20]}
    assert process["terminal"] is True
    assert process["noNewPrivileges"] is True
    assert process["oomScoreAdj"] == 500
    assert process["rlimits"] == limits
    assert process["capabilities"]["effective"] == ["CAP_KILL"]
    assert "inheritable" not in process["capabilities"]
    assert "ambient" not in process["capabilities"]


def test_default_rlimits_are_our_nofile() -> None:
    """Without explicit rlimits the spec carries NOFILE exactly as this process has it."""
    spec = generate(SpecInputs(rootfs="/r", args=["sh"]))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert spec["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": hard, "soft": soft}]


def test_standard_mounts_in_podman_order() -> None:
    """The standard mounts come in Podman's order with Podman's options; /dev/shm is sized."""
    spec = generate(_inputs(shm_size=1024 * 1024))
    by_dest = {m["destination"]: m for m in spec["mounts"]}
    assert [m["destination"] for m in spec["mounts"]] == [
        "/proc",
        "/dev",
        "/sys",
        "/dev/pts",
        "/dev/mqueue",
        "/dev/shm",
        "/sys/fs/cgroup",
    ]
    assert by_dest["/proc"]["type"] == "proc"
    assert by_dest["/dev"]["options"] == [
        "nosuid",
        "noexec",
        "strictatime",
        "mode=755",
        "size=65536k",
    ]
    assert by_dest["/sys"]["options"][-1] == "ro"
    assert "newinstance" in by_dest["/dev/pts"]["options"]
    assert by_dest["/dev/shm"]["type"] == "tmpfs"
    assert "size=1048576" in by_dest["/dev/shm"]["options"]
    assert "mode=1777" in by_dest["/dev/shm"]["options"]
    assert by_dest["/sys/fs/cgroup"]["type"] == "cgroup"
    assert by_dest["/sys/fs/cgroup"]["options"][-1] == "ro"


def test_default_shm_is_64_mib() -> None:
    """Podman's default shm size is 64 MiB."""
    shm = next(m for m in generate(_inputs())["mounts"] if m["destination"] == "/dev/shm")
    assert f"size={64 * 1024 * 1024}" in shm["options"]


def test_extra_mounts_follow_and_replace_standard_ones() -> None:
    """Caller mounts come after the standard set; one on a standard destination replaces it."""
    hosts = {
        "destination": "/etc/hosts",
        "type": "bind",
        "source": "/run/podapi/c/hosts",
        "options": ["bind", "rprivate"],
    }
    shm = {
        "destination": "/dev/shm/",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["size=1g"],
    }
    spec = generate(_inputs(mounts=[hosts, shm]))
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests == [
        "/proc",
        "/dev",
        "/sys",
        "/dev/pts",
        "/dev/mqueue",
        "/dev/shm/",
        "/sys/fs/cgroup",
        "/etc/hosts",
    ]
    assert spec["mounts"][5]["options"] == ["size=1g"]
    assert spec["mounts"][-1] == hosts


def test_own_dev_replaces_the_dev_tree() -> None:
    """A caller's /dev mount drops the standard mounts below /dev."""
    dev = {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}
    dests = [m["destination"] for m in generate(_inputs(mounts=[dev]))["mounts"]]
    assert dests == ["/proc", "/dev", "/sys", "/sys/fs/cgroup"]


def test_privileged_relaxes_sys_cgroup_devices_and_paths() -> None:
    """Privileged: /sys and cgroups rw, no masked or read-only paths, every device allowed."""
    spec = generate(_inputs(privileged=True))
    by_dest = {m["destination"]: m for m in spec["mounts"]}
    assert by_dest["/sys"]["options"][-1] == "rw"
    assert by_dest["/sys/fs/cgroup"]["options"][-1] == "rw"
    linux = spec["linux"]
    assert "maskedPaths" not in linux
    assert "readonlyPaths" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


def test_namespaces_paths_and_host_network() -> None:
    """A path joins an existing namespace; leaving network out means the host's."""
    spec = generate(
        _inputs(namespaces=[("pid", None), ("network", "/run/netns/n1"), ("mount", None)])
    )
    assert spec["linux"]["namespaces"] == [
        {"type": "pid"},
        {"type": "network", "path": "/run/netns/n1"},
        {"type": "mount"},
    ]
    host_net = generate(_inputs(namespaces=[("pid", None), ("uts", None), ("mount", None)]))
    assert "network" not in [ns["type"] for ns in host_net["linux"]["namespaces"]]


def test_hostname_needs_a_uts_namespace() -> None:
    """runc refuses a hostname without a UTS namespace, so none is written then."""
    spec = generate(_inputs(hostname="abc", namespaces=[("pid", None), ("mount", None)]))
    assert "hostname" not in spec


def test_unknown_namespace_is_invalid() -> None:
    """An unknown namespace type is an InvalidArgument."""
    with pytest.raises(InvalidArgument):
        generate(_inputs(namespaces=[("bogus", None)]))


def test_relative_rootfs_and_empty_command_are_invalid() -> None:
    """The rootfs must be absolute and there must be a command."""
    with pytest.raises(InvalidArgument):
        generate(_inputs(rootfs="merged"))
    with pytest.raises(InvalidArgument):
        generate(_inputs(args=[]))


def test_resources_only_what_was_asked() -> None:
    """Only the requested memory, CPU and pids limits appear."""
    spec = generate(_inputs(resources=Resources(memory=1 << 26, pids_limit=2048)))
    assert spec["linux"]["resources"] == {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 1 << 26},
        "pids": {"limit": 2048},
    }
    full = Resources(
        memory=100,
        memory_swap=200,
        memory_reservation=50,
        cpu_shares=512,
        cpu_quota=50000,
        cpu_period=100000,
        cpuset_cpus="0-1",
        cpuset_mems="0",
    )
    resources = generate(_inputs(resources=full))["linux"]["resources"]
    assert resources["memory"] == {"limit": 100, "swap": 200, "reservation": 50}
    assert resources["cpu"] == {
        "shares": 512,
        "quota": 50000,
        "period": 100000,
        "cpus": "0-1",
        "mems": "0",
    }
    assert "pids" not in resources


def test_devices_are_created_and_allowed() -> None:
    """A --device entry goes to linux.devices and gets an allow rule after deny-all."""
    fuse = {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}
    linux = generate(_inputs(devices=[fuse]))["linux"]
    assert linux["devices"] == [fuse]
    assert linux["resources"]["devices"] == [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
    ]


def test_cgroups_path_sysctl_annotations_seccomp_verbatim() -> None:
    """cgroupsPath, sysctl, annotations and the seccomp object are copied as given."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}
    spec = generate(
        _inputs(
            cgroups_path="podapi/abc",
            sysctl={"net.ipv4.ip_forward": "1"},
            annotations={"io.container.manager": "libpod"},
            seccomp=profile,
        )
    )
    assert spec["linux"]["cgroupsPath"] == "podapi/abc"
    assert spec["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1"}
    assert spec["linux"]["seccomp"] == profile
    assert spec["annotations"] == {"io.container.manager": "libpod"}


def test_init_is_bound_read_only_and_prefixes_args() -> None:
    """--init: the binary is bound read-only at /run/podman-init, which runs the command."""
    spec = generate(_inputs(args=["sleep", "1"], init_path="/usr/bin/catatonit"))
    assert spec["process"]["args"] == [INIT_PATH, "--", "sleep", "1"]
    assert spec["mounts"][-1] == {
        "destination": "/run/podman-init",
        "type": "bind",
        "source": "/usr/bin/catatonit",
        "options": ["bind", "ro"],
    }


def test_readonly_rootfs() -> None:
    """readonly_rootfs sets root.readonly."""
    assert generate(_inputs(readonly_rootfs=True))["root"]["readonly"] is True


# --- seccomp -----------------------------------------------------------------------------


@needs_profile
def test_seccomp_native_architectures_and_defaults() -> None:
    """x86_64 gets its sub-architectures; default action and errno are kept."""
    converted = seccomp.convert(
        _profile(), capabilities.DEFAULT_CAPABILITIES, go_arch="amd64", kernel="6.1.0"
    )
    assert converted["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert converted["defaultAction"] == "SCMP_ACT_ERRNO"
    assert converted["defaultErrnoRet"] == 38
    arm = seccomp.convert(_profile(), (), go_arch="arm64", kernel="6.1.0")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]


@needs_profile
def test_seccomp_rules_gated_on_capabilities() -> None:
    """A rule needing a cap in the set stays; its 'cap missing' twin and others go."""
    converted = seccomp.convert(
        _profile(), capabilities.DEFAULT_CAPABILITIES, go_arch="amd64", kernel="6.1.0"
    )
    # CAP_SYS_CHROOT is a default cap: chroot is allowed, its ERRNO twin is gone.
    assert [r["action"] for r in _rules_for(converted, "chroot")] == ["SCMP_ACT_ALLOW"]
    # CAP_SYS_ADMIN is not: bpf gets only the EPERM rule.
    bpf = _rules_for(converted, "bpf")
    assert [(r["action"], r.get("errnoRet")) for r in bpf] == [("SCMP_ACT_ERRNO", 1)]
    # CAP_AUDIT_WRITE is missing: the four "excludes" socket rules stay, the "includes" one goes.
    sockets = [r for r in converted["syscalls"] if r["names"] == ["socket"]]
    assert len(sockets) == 4
    assert all("args" in r for r in sockets)
    admin = seccomp.convert(
        _profile(),
        [*capabilities.DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"],
        go_arch="amd64",
        kernel="6",
    )
    assert [r["action"] for r in _rules_for(admin, "bpf")] == ["SCMP_ACT_ALLOW"]


@needs_profile
def test_seccomp_matches_podman_rule_count_for_14_caps() -> None:
    """Podman 4.3.1's 14-cap conversion has 19 rule groups; ours too."""
    converted = seccomp.convert(_profile(), PODMAN_14, go_arch="amd64", kernel="6.1.0")
    assert len(converted["syscalls"]) == 19
    sockets = [r for r in converted["syscalls"] if r["names"] == ["socket"]]
    assert sockets == [{"names": ["socket"], "action": "SCMP_ACT_ALLOW"}]


@needs_profile
def test_seccomp_other_arches_dropped() -> None:
    """Rules for other architectures are dropped; amd64's own arch rules stay."""
    converted = seccomp.convert(
        _profile(), capabilities.DEFAULT_CAPABILITIES, go_arch="amd64", kernel="6.1.0"
    )
    names = {name for rule in converted["syscalls"] for name in rule["names"]}
    assert "arch_prctl" in names
    assert "modify_ldt" in names
    for foreign in ("sync_file_range2", "arm_fadvise64_64", "s390_pci_mmio_read"):
        assert foreign not in names
    arm = seccomp.convert(_profile(), (), go_arch="arm64", kernel="6.1.0")
    arm_names = {name for rule in arm["syscalls"] for name in rule["names"]}
    assert "arm_fadvise64_64" in arm_names
    assert "arch_prctl" not in arm_names


@needs_profile
def test_seccomp_output_is_clean() -> None:
    """Only names/action/errnoRet/args survive; zero valueTwo is left out like Podman does."""
    converted = seccomp.convert(
        _profile(), capabilities.DEFAULT_CAPABILITIES, go_arch="amd64", kernel="6.1.0"
    )
    assert set(converted) == {"defaultAction", "defaultErrnoRet", "architectures", "syscalls"}
    for rule in converted["syscalls"]:
        assert set(rule) <= {"names", "action", "errnoRet", "args"}
        for arg in rule.get("args", ()):
            assert set(arg) <= {"index", "value", "valueTwo", "op"}
            assert arg.get("valueTwo", 1) != 0
    personality = _rules_for(converted, "personality")
    assert personality[0]["args"] == [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]


def test_seccomp_min_kernel_synthetic() -> None:
    """includes.minKernel needs at least that kernel; excludes.minKernel drops it from there."""
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["new_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.8"}},
            {"names": ["old_call"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.8"}},
            {"name": "single", "action": "SCMP_ACT_LOG", "comment": "dropped", "errno": "EPERM"},
        ],
    }
    old = seccomp.convert(profile, (), go_arch="amd64", kernel="5.4.0-150-generic")
    assert [r["names"] for r in old["syscalls"]] == [["old_call"], ["single"]]
    same = seccomp.convert(profile, (), go_arch="amd64", kernel="5.8")
    assert [r["names"] for r in same["syscalls"]] == [["new_call"], ["single"]]
    new = seccomp.convert(profile, (), go_arch="amd64", kernel="6.18.0-1-amd64")
    assert [r["names"] for r in new["syscalls"]] == [["new_call"], ["single"]]
    assert new["syscalls"][-1] == {"names": ["single"], "action": "SCMP_ACT_LOG"}
    assert new["flags"] == ["SECCOMP_FILTER_FLAG_LOG"]
    assert "architectures" not in new
    with pytest.raises(InvalidArgument):
        seccomp.convert(profile, (), go_arch="amd64", kernel="weird")


def test_seccomp_converter_caches_by_capability_set() -> None:
    """The same capability set in any order gives the same cached object."""
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_A"]}}
        ],
    }
    converter = seccomp.Converter(profile, go_arch="amd64", kernel="6.1")
    first = converter.for_capabilities(["CAP_A", "CAP_B"])
    assert converter.for_capabilities(["CAP_B", "CAP_A"]) is first
    assert len(first["syscalls"]) == 1
    assert converter.for_capabilities(["CAP_B"])["syscalls"] == []


def test_load_default_first_existing(tmp_path: Path) -> None:
    """The first profile that exists wins; none found is None; bad JSON is invalid."""
    second = tmp_path / "b.json"
    second.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    assert seccomp.load_default((str(tmp_path / "a.json"), str(second))) == {
        "defaultAction": "SCMP_ACT_ALLOW"
    }
    assert seccomp.load_default((str(tmp_path / "a.json"),)) is None
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InvalidArgument):
        seccomp.load_default((str(bad),))


# --- capabilities ------------------------------------------------------------------------


def test_default_capabilities_mask() -> None:
    """The 11 default caps are the mask Podman's containers show (CapEff 800405fb)."""
    assert len(capabilities.DEFAULT_CAPABILITIES) == 11
    assert capabilities.mask(capabilities.DEFAULT_CAPABILITIES) == 0x800405FB


def test_all_capabilities_follow_the_kernel(tmp_path: Path) -> None:
    """ALL_CAPABILITIES stops at cap_last_cap."""
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
        last = int(f.read())
    assert len(capabilities.ALL_CAPABILITIES) == last + 1
    assert capabilities.ALL_CAPABILITIES[0] == "CAP_CHOWN"
    path = tmp_path / "cap_last_cap"
    path.write_text("37\n")
    known = capabilities.known_capabilities(str(path))
    assert known[-1] == "CAP_AUDIT_READ"


@pytest.mark.parametrize("spelling", ["chown", "CHOWN", "CAP_CHOWN", " cap_chown "])
def test_normalise_spellings(spelling: str) -> None:
    """chown, CHOWN and CAP_CHOWN all mean CAP_CHOWN."""
    assert capabilities.normalise(spelling) == "CAP_CHOWN"


def test_normalise_unknown() -> None:
    """An unknown capability is an InvalidArgument."""
    with pytest.raises(InvalidArgument):
        capabilities.normalise("CAP_FLY")


EVERY = ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN", "CAP_NET_RAW"]


@pytest.mark.parametrize(
    ("add", "drop", "privileged", "expected"),
    [
        ([], [], False, list(capabilities.DEFAULT_CAPABILITIES)),
        ([], [], True, EVERY),
        (["all"], ["chown"], True, EVERY),
        (["net_raw"], ["CAP_CHOWN", "kill"], False, None),
        (["ALL"], ["chown"], False, ["CAP_KILL", "CAP_SYS_ADMIN", "CAP_NET_RAW"]),
        (["net_raw", "kill"], ["all"], False, ["CAP_NET_RAW", "CAP_KILL"]),
        (["all"], ["all"], False, EVERY),
    ],
)
def test_effective_docker_rules(
    add: list[str], drop: list[str], privileged: bool, expected: list[str] | None
) -> None:
    """Docker's add/drop/ALL/privileged rules."""
    result = capabilities.effective(add, drop, privileged, all_capabilities=EVERY)
    if expected is None:
        expected = [
            c for c in capabilities.DEFAULT_CAPABILITIES if c not in ("CAP_CHOWN", "CAP_KILL")
        ] + ["CAP_NET_RAW"]
    assert result == expected


def test_effective_added_default_is_not_repeated() -> None:
    """Adding a default cap does not list it twice."""
    result = capabilities.effective(["chown"], [], False)
    assert result.count("CAP_CHOWN") == 1
    assert len(result) == 11


def test_effective_rejects_unknown() -> None:
    """An unknown name in add or drop is an InvalidArgument."""
    with pytest.raises(InvalidArgument):
        capabilities.effective(["CAP_FLY"], [], False)
    with pytest.raises(InvalidArgument):
        capabilities.effective([], ["fly"], False)


def test_privileged_is_our_bounding_set() -> None:
    """By default "every capability" is what this process can hand on (its CapBnd)."""
    bounding = capabilities.bounding_set()
    assert capabilities.effective([], [], True) == bounding
    with open("/proc/self/status", encoding="ascii") as f:
        cap_bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    assert capabilities.mask(bounding) == cap_bnd & capabilities.mask(capabilities.ALL_CAPABILITIES)


def test_bounding_set_from_status(tmp_path: Path) -> None:
    """CapBnd bits select the named capabilities; CAP_SYS_RESOURCE (bit 24) can be missing."""
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t0000000000000001\nCapBnd:\t000001fffeffffff\n")
    bounding = capabilities.bounding_set(str(status))
    assert "CAP_SYS_RESOURCE" not in bounding
    assert "CAP_SYS_ADMIN" in bounding
    assert capabilities.has_capability("chown", str(status))
    assert not capabilities.has_capability("CAP_SYS_RESOURCE", str(status))


# --- rlimits -----------------------------------------------------------------------------


def _own(kind: int) -> tuple[int, int]:
    soft, hard = resource.getrlimit(kind)
    return (
        rlimits.UNLIMITED if soft == resource.RLIM_INFINITY else soft,
        rlimits.UNLIMITED if hard == resource.RLIM_INFINITY else hard,
    )


def _by_type(entries: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    return {e["type"]: (e["soft"], e["hard"]) for e in entries}


def test_inherited_is_nofile_and_nproc() -> None:
    """inherited() copies this process's NOFILE and NPROC."""
    assert _by_type(rlimits.inherited()) == {
        "RLIMIT_NOFILE": _own(resource.RLIMIT_NOFILE),
        "RLIMIT_NPROC": _own(resource.RLIMIT_NPROC),
    }


def test_clamp_always_has_nofile() -> None:
    """Nothing requested: NOFILE as we have it."""
    assert rlimits.clamp([], privileged_resources=False) == [
        {
            "type": "RLIMIT_NOFILE",
            "soft": _own(resource.RLIMIT_NOFILE)[0],
            "hard": _own(resource.RLIMIT_NOFILE)[1],
        }
    ]


def test_clamp_to_our_hard_limit() -> None:
    """Without CAP_SYS_RESOURCE, -1 and too-high values become our hard limit; soft <= hard."""
    nofile_hard = _own(resource.RLIMIT_NOFILE)[1]
    nproc_hard = _own(resource.RLIMIT_NPROC)[1]
    result = _by_type(
        rlimits.clamp(
            [("nofile", -1, -1), ("NPROC", 2**40, 2**40), ("core", 0, 0)],
            privileged_resources=False,
        )
    )
    assert result["RLIMIT_NOFILE"] == (nofile_hard, nofile_hard)
    assert result["RLIMIT_NPROC"] == (nproc_hard, nproc_hard)
    assert result["RLIMIT_CORE"] == (0, 0)


def test_clamp_keeps_lower_values_and_clamps_soft_to_hard() -> None:
    """Values below our limit stay; a soft limit above the clamped hard one is lowered to it."""
    own_hard = rlimits.own_limit("RLIMIT_NPROC")[1]
    if own_hard != rlimits.UNLIMITED:
        wanted = [("nproc", own_hard + 10, own_hard + 20)]
        result = _by_type(rlimits.clamp(wanted, privileged_resources=False))
        assert result["RLIMIT_NPROC"] == (own_hard, own_hard)
    result = _by_type(rlimits.clamp([("nofile", 10, 100)], privileged_resources=False))
    assert result == {"RLIMIT_NOFILE": (10, 100)}


def test_clamp_with_cap_sys_resource() -> None:
    """With CAP_SYS_RESOURCE, -1 stays unlimited (NOFILE stops at fs.nr_open)."""
    with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
        nr_open = int(f.read())
    result = _by_type(
        rlimits.clamp([("memlock", -1, -1), ("nofile", -1, -1)], privileged_resources=True)
    )
    assert result["RLIMIT_MEMLOCK"] == (rlimits.UNLIMITED, rlimits.UNLIMITED)
    assert result["RLIMIT_NOFILE"] == (nr_open, nr_open)


@pytest.mark.parametrize("name", sorted(rlimits.TYPES))
def test_clamp_knows_docker_names(name: str) -> None:
    """Every Docker ulimit name maps to its RLIMIT_ type (LOCKS included)."""
    result = _by_type(rlimits.clamp([(name, 0, 0)], privileged_resources=False))
    assert result[rlimits.TYPES[name]] == (0, 0)


def test_clamp_unknown_and_negative_are_invalid() -> None:
    """Unknown names and negative values other than -1 are InvalidArgument."""
    with pytest.raises(InvalidArgument):
        rlimits.clamp([("files", 1, 1)], privileged_resources=False)
    with pytest.raises(InvalidArgument):
        rlimits.clamp([("nofile", -2, 1)], privileged_resources=False)


def test_exec_process_keeps_the_container_settings_it_does_not_change() -> None:
    container = {
        "terminal": True,
        "consoleSize": {"height": 10, "width": 20},
        "user": {"uid": 0, "gid": 0, "umask": 18},
        "args": ["sleep", "1000"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "capabilities": {"bounding": ["CAP_CHOWN"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}],
        "noNewPrivileges": True,
    }
    process = exec_process(
        container,
        args=["id"],
        env=["PATH=/bin", "A=b"],
        cwd="/tmp",
        terminal=False,
        user=(65534, 65534, [10]),
        capabilities=["CAP_CHOWN", "CAP_SYS_ADMIN"],
    )
    assert process["args"] == ["id"] and process["cwd"] == "/tmp" and not process["terminal"]
    assert "consoleSize" not in process
    assert process["user"] == {"uid": 65534, "gid": 65534, "umask": 18, "additionalGids": [10]}
    assert process["capabilities"]["effective"] == ["CAP_CHOWN", "CAP_SYS_ADMIN"]
    assert process["rlimits"] == container["rlimits"] and process["noNewPrivileges"] is True
    unchanged = exec_process(container, args=["true"], env=[], cwd="/", terminal=True)
    assert unchanged["user"] == container["user"]
    assert unchanged["capabilities"] == container["capabilities"]
