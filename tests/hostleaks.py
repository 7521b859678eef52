"""What tests could leave on the host: bridges, veths, firewall rules, mounts, cgroups.

Test servers use their own default subnets (10.250.0.0/16), pools
(172.16.0.0/12) and bridge names (``BRIDGE_MARK...``), so anything left
that mentions them is ours.  netavark's base chains (``NETAVARK_FORWARD``,
``NETAVARK-HOSTPORT-*``) are shared by every network user of the host and
stay, as they do after Podman.  Containers' and pods' cgroups nest under the
cgroup of the server, which is the test session's own.
"""

import os
import re
import subprocess
from pathlib import Path

from podapi.oci.cgroups import mount_dir, own_cgroups
from tests.support import BRIDGE_MARK

#: Per-network and per-port chains (``NETAVARK-1A2B...``, ``NETAVARK-DN-1A2B...``) and
#: rules about the test subnets.
_OURS = re.compile(r"NETAVARK-(DN-)?[0-9A-F]{8,}|\b10\.250\.|\b172\.(1[6-9]|2\d|3[01])\.")


def interfaces() -> set[str]:
    """The host's network interfaces."""
    return {p.name for p in Path("/sys/class/net").iterdir()}


def firewall_rules() -> set[str]:
    """iptables and ip6tables rules and chains, without counters."""
    found: set[str] = set()
    for tool in ("iptables-save", "ip6tables-save"):
        result = subprocess.run([tool], capture_output=True, text=True, check=False, timeout=30)
        for line in result.stdout.splitlines():
            if line.startswith(("#", "COMMIT")):
                continue
            found.add(re.sub(r"\[\d+:\d+\]", "", line).strip())
    return found


def mount_points() -> set[str]:
    """Every mount point of this mount namespace (network namespace files included)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return {line.split()[4] for line in lines}


def cgroups() -> set[str]:
    """Every cgroup under this process's own, in every mounted hierarchy."""
    found: set[str] = set()
    for key, own in own_cgroups().items():
        mount = mount_dir(key)
        if mount is None:
            continue
        for directory, _, _ in os.walk(os.path.join(mount, own.lstrip("/"))):
            found.add(directory)
    return found


class HostSnapshot:
    """The host's interfaces, firewall rules, mounts and cgroups now, to compare with later."""

    def __init__(self) -> None:
        self.interfaces = interfaces()
        self.rules = firewall_rules()
        self.mounts = mount_points()
        self.cgroups = cgroups()

    def leaks(self) -> list[str]:
        """Test networks' interfaces and rules, mounts and cgroups that appeared since the
        snapshot."""
        new_interfaces = interfaces() - self.interfaces
        left = sorted(i for i in new_interfaces if i.startswith((BRIDGE_MARK, "veth")))
        left += sorted(r for r in firewall_rules() - self.rules if _OURS.search(r))
        left += sorted(mount_points() - self.mounts)
        left += sorted(cgroups() - self.cgroups)
        return left
