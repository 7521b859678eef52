"""The container diff hides the mount points the engine makes, as Docker's does."""

from podapi.engine.containers import without_runtime_mounts
from podapi.oci.rootfs import ADDED, CHANGED, DELETED


def test_mount_points_and_the_directories_made_for_them_are_hidden() -> None:
    """``touch /test`` shows ``A /test`` only: not /etc, /run or the files mounted there."""
    found = [
        ("/etc", CHANGED),
        ("/etc/hostname", ADDED),
        ("/etc/hosts", ADDED),
        ("/etc/resolv.conf", ADDED),
        ("/run", ADDED),
        ("/run/.containerenv", ADDED),
        ("/test", ADDED),
    ]
    assert without_runtime_mounts(found) == [("/test", ADDED)]


def test_a_directory_with_real_changes_inside_stays() -> None:
    """/etc stays when the container wrote in it; a deletion is always the container's."""
    found = [
        ("/etc", CHANGED),
        ("/etc/foo", ADDED),
        ("/etc/hosts", ADDED),
        ("/run", DELETED),
        ("/runner", ADDED),
    ]
    assert without_runtime_mounts(found) == [
        ("/etc", CHANGED),
        ("/etc/foo", ADDED),
        ("/runner", ADDED),
    ]
