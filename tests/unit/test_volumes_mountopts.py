"""Docker's bind strings, volume names and Podman's mount option rules."""

import os
from pathlib import Path

import pytest

from podapi.engine.containerspec import ContainerSpec, MountSpec
from podapi.engine.mountplan import parse_volumes_from, plan_mounts
from podapi.errors import InvalidArgument
from podapi.oci import mountopts
from podapi.oci.mountopts import BindString, parse_bind, process_options, valid_volume_name


@pytest.mark.parametrize("name", ["ab", "a1", "my_vol.v-2", "0x", "A" * 200])
def test_valid_volume_names(name: str) -> None:
    assert valid_volume_name(name)


@pytest.mark.parametrize("name", ["", "a", "_ab", ".ab", "-ab", "a/b", "a b", "vol!", "é1"])
def test_invalid_volume_names(name: str) -> None:
    """Docker's rule ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``: two characters at least."""
    assert not valid_volume_name(name)
    with pytest.raises(InvalidArgument, match="includes invalid characters"):
        mountopts.check_volume_name(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/data", BindString("", "/data", False, ())),
        ("vol:/data", BindString("vol", "/data", False, ())),
        ("vol:/data:ro", BindString("vol", "/data", True, ())),
        ("vol:/data:rw,nocopy", BindString("vol", "/data", False, ("nocopy",))),
        ("/host/./dir/:/data/:ro,Z", BindString("/host/dir", "/data", True, ("Z",))),
        ("/h:/d:rshared", BindString("/h", "/d", False, ("rshared",))),
        ("/h:/d:z,slave,rw", BindString("/h", "/d", False, ("z", "slave"))),
    ],
)
def test_parse_bind(text: str, expected: BindString) -> None:
    assert parse_bind(text) == expected
    assert parse_bind(text).is_bind == expected.source.startswith("/")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid volume specification"),
        (":/d", "invalid volume specification"),
        ("/h:", "invalid volume specification"),
        ("a:b:c:d", "invalid volume specification"),
        ("/h:rw", "invalid volume specification"),  # a mode but no destination
        ("/h:/d:bogus", "invalid mode: bogus"),
        ("/h:/d:ro,rw", "invalid mode: ro,rw"),
        ("/h:/d:z,Z", "invalid mode: z,Z"),
        ("/h:/d:shared,slave", "invalid mode"),
        ("/h:/d:nocopy", "nocopy is only for volumes"),
        ("v!:/d", "includes invalid characters"),
        ("vol:relative", "must be absolute"),
        ("vol:/", "destination can't be '/'"),
    ],
)
def test_parse_bind_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_bind(text)


def test_process_options_adds_podman_defaults() -> None:
    assert process_options([], tmpfs=True) == ("rw", "rprivate", "nosuid", "nodev", "tmpcopyup")
    assert process_options(["ro", "size=1m", "noexec"], tmpfs=True) == (
        "ro",
        "size=1m",
        "noexec",
        "rprivate",
        "nosuid",
        "nodev",
        "tmpcopyup",
    )
    assert process_options(["notmpcopyup"], tmpfs=True)[-1] == "nodev"
    assert process_options(["size=50%", "mode=1777"], tmpfs=True)[:2] == ("size=50%", "mode=1777")
    assert process_options(["shared"], tmpfs=False) == ("shared", "rw", "nosuid", "nodev", "rbind")


def test_process_options_keeps_a_bind_sources_flags(tmp_path: Path) -> None:
    flags = os.statvfs(tmp_path).f_flag
    options = process_options([], tmpfs=False, source=str(tmp_path))
    assert ("nosuid" in options) == bool(flags & os.ST_NOSUID)
    assert ("nodev" in options) == bool(flags & os.ST_NODEV)
    assert options[:2] == ("rw", "rprivate") and options[-1] == "rbind"


@pytest.mark.parametrize(
    ("options", "tmpfs", "message"),
    [
        (["bogus"], False, "unknown mount option"),
        (["size=1m"], False, "only allowed with tmpfs"),
        (["mode=1777"], False, "only allowed with tmpfs"),
        (["bind"], True, "not allowed with tmpfs"),
        (["z"], True, "not allowed with tmpfs"),
        (["ro", "rw"], False, "duplicate mount option"),
        (["shared", "rslave"], True, "duplicate mount option"),
        (["exec", "noexec"], True, "duplicate mount option"),
        (["size=lots"], True, "invalid tmpfs option size='lots'"),
        (["size=1x"], True, "invalid tmpfs option"),
        (["mode=999"], True, "invalid tmpfs option mode='999'"),
    ],
)
def test_process_options_refuses(options: list[str], tmpfs: bool, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        process_options(options, tmpfs=tmpfs)


def test_runtime_options_drop_ours() -> None:
    assert mountopts.for_runtime(["nocopy", "z", "rbind", "ro", "copy", "Z"]) == ["rbind", "ro"]
    assert mountopts.propagation(["rbind", "rslave"]) == "rslave"
    assert mountopts.propagation(["rbind"]) == ""


def test_split_options_as_mount8() -> None:
    flags, data = mountopts.split_options("size=10m,nodev,noexec,mode=1777,rw")
    assert flags == mountopts.MS_NODEV | mountopts.MS_NOEXEC
    assert data == "size=10m,mode=1777"
    flags, _ = mountopts.split_options("rbind,ro")
    assert flags == mountopts.MS_BIND | mountopts.MS_REC | mountopts.MS_RDONLY


@pytest.mark.parametrize(
    ("entry", "expected"),
    [("web", ("web", "")), ("web:ro", ("web", "ro")), ("web:rw,z", ("web", "rw"))],
)
def test_volumes_from(entry: str, expected: tuple[str, str]) -> None:
    assert parse_volumes_from(entry) == expected


@pytest.mark.parametrize("entry", [":ro", "web:bogus", "web:ro,rw", "web:ro,ro"])
def test_volumes_from_refuses(entry: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_volumes_from(entry)


def test_plan_mounts_order_and_precedence(tmp_path: Path) -> None:
    """Requested mounts win, then ``volumes_from``, then ``Config.Volumes`` and the image's."""
    spec = ContainerSpec(
        image="x",
        mounts=(
            MountSpec(type="bind", source=str(tmp_path), destination="/srv/", readonly=True),
            MountSpec(type="volume", source="named", destination="/data", options=("nocopy",)),
            MountSpec(type="tmpfs", destination="/t", options=("size=1m",)),
        ),
        volumes=("/cache",),
    )
    inherited_mount = MountSpec(
        type="volume", name="v" * 64, source="/vols/x/_data", destination="/shared"
    )
    data_from_other = MountSpec(type="volume", name="other", destination="/data")
    planned = plan_mounts(spec, ["/data", "/logs"], [((inherited_mount, data_from_other), "ro")])
    by_destination = {m.destination: m for m in planned}
    assert list(by_destination) == ["/srv", "/data", "/t", "/shared", "/cache", "/logs"]
    assert by_destination["/srv"].readonly
    assert by_destination["/srv"].options[-1] == "rbind"
    assert by_destination["/data"].source == "named"  # the request beats volumes_from
    assert "nocopy" in by_destination["/data"].options
    assert by_destination["/t"].options[:2] == ("size=1m", "rprivate")
    assert by_destination["/shared"].readonly and by_destination["/shared"].name == "v" * 64
    anonymous = by_destination["/logs"]
    assert (anonymous.type, anonymous.source, anonymous.readonly) == ("volume", "", False)
    assert {"rprivate", "nodev", "exec"} <= set(anonymous.options)


def test_plan_mounts_image_volume_modes() -> None:
    tmpfs = plan_mounts(ContainerSpec(image="x", image_volume_mode="tmpfs"), ["/v"], [])
    assert [(m.type, m.destination) for m in tmpfs] == [("tmpfs", "/v")]
    assert plan_mounts(ContainerSpec(image="x", image_volume_mode="ignore"), ["/v"], []) == ()
    with pytest.raises(InvalidArgument, match="invalid image volume mode"):
        plan_mounts(ContainerSpec(image="x", image_volume_mode="bogus"), ["/v"], [])


@pytest.mark.parametrize(
    ("mount", "message"),
    [
        (MountSpec(type="bind", source="/no/such/dir", destination="/d"), "does not exist"),
        (MountSpec(type="bind", source="rel", destination="/d"), "must be absolute"),
        (MountSpec(type="volume", source="bad/name", destination="/d"), "invalid characters"),
        (MountSpec(type="tmpfs", destination="/t", options=("size=1m", "bogus")), "unknown"),
        (MountSpec(type="tmpfs", destination="relative"), "must be absolute"),
        (MountSpec(type="npipe", destination="/d"), "invalid mount type"),
    ],
)
def test_plan_mounts_refuses(mount: MountSpec, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        plan_mounts(ContainerSpec(image="x", mounts=(mount,)), [], [])


def test_plan_mounts_refuses_duplicate_destinations() -> None:
    twice = (
        MountSpec(type="tmpfs", destination="/t"),
        MountSpec(type="volume", source="vol", destination="/t/"),
    )
    with pytest.raises(InvalidArgument, match="duplicate mount destination"):
        plan_mounts(ContainerSpec(image="x", mounts=twice), [], [])
