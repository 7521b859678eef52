"""netavark's drivers, and Podman's checks of the LAN ones (macvlan, ipvlan)."""

from collections.abc import Mapping, Sequence, Set

from podapi.errors import InvalidArgument
from podapi.oci.netavark import Subnet

#: netavark's drivers: a bridge of ours, or addresses on the LAN of a host interface.
DRIVERS = ("bridge", "macvlan", "ipvlan")
#: The ``mode`` option of each LAN driver (netavark's and the kernel's names).
VLAN_MODES = {
    "macvlan": ("", "bridge", "private", "vepa", "passthru"),
    "ipvlan": ("", "l2", "l3", "l3s"),
}


def check_lan_network(
    driver: str,
    parent: str,
    subnets: Sequence[Subnet],
    options: Mapping[str, str],
    host_interfaces: Set[str],
) -> None:
    """Podman's checks of a macvlan or ipvlan network (``createIpvlanOrMacvlan``).

    The parent interface must exist on the host (none: netavark takes the one
    of the default route); subnets are the parent's LAN's, so they are neither
    taken from the pools nor checked against the host's routes, but one is
    required (no DHCP proxy here, as netavark needs for DHCP).
    """
    if parent and parent not in host_interfaces:
        raise InvalidArgument(f"parent interface {parent} does not exist")
    if not subnets:
        raise InvalidArgument(
            f"{driver} driver needs at least one subnet specified, "
            "DHCP is not yet supported with netavark"
        )
    for key, value in options.items():
        if key == "mode":
            if value not in VLAN_MODES[driver]:
                raise InvalidArgument(f"unknown {driver} mode {value!r}")
        elif key == "mtu":
            if not value.isdigit():
                raise InvalidArgument(f"mtu {value!r} is not a number")
        else:
            raise InvalidArgument(f"unsupported {driver} network option {key}")
