"""Subnet and address choice for networks (pure logic)."""

import pytest

from podapi.engine import ipam
from podapi.errors import Conflict, InvalidArgument
from podapi.oci.netavark import Subnet


def test_complete_fills_the_first_host_address_as_gateway() -> None:
    assert ipam.complete(Subnet("10.5.0.0/24")).gateway == "10.5.0.1"
    assert ipam.complete(Subnet("fd00:1::/64")).gateway == "fd00:1::1"
    assert ipam.complete(Subnet("10.5.0.0/24", "10.5.0.254")).gateway == "10.5.0.254"


@pytest.mark.parametrize(
    "subnet",
    [
        Subnet("10.5.0.1/24"),  # host bits set
        Subnet("nonsense"),
        Subnet("10.5.0.0/31"),  # no room
        Subnet("10.5.0.0/24", "10.6.0.1"),  # gateway outside
        Subnet("10.5.0.0/24", "10.5.0.0"),  # the network address
        Subnet("10.5.0.0/24", "", "10.5.1.1", ""),  # range outside
    ],
)
def test_complete_refuses_bad_subnets(subnet: Subnet) -> None:
    with pytest.raises(InvalidArgument):
        ipam.complete(subnet)


def test_overlap_is_a_conflict_only_within_one_ip_version() -> None:
    ipam.check_no_overlap(["10.5.0.0/24"], ["10.6.0.0/16", "fd00::/8"])
    with pytest.raises(Conflict, match="already used"):
        ipam.check_no_overlap(["10.5.3.0/24"], ["10.5.0.0/16"])
    with pytest.raises(Conflict):
        ipam.check_no_overlap(["10.0.0.0/8"], ["10.5.0.0/16"])


def test_free_subnet_skips_taken_ones_and_reports_exhaustion() -> None:
    assert ipam.free_subnet("10.89.0.0/16", []) == "10.89.0.0/24"
    assert ipam.free_subnet("10.89.0.0/16", ["10.89.0.0/23", "10.89.3.0/24"]) == "10.89.2.0/24"
    with pytest.raises(Conflict, match="no free subnet"):
        ipam.free_subnet("10.89.0.0/24", ["10.0.0.0/8"])


def test_free_address_skips_gateway_used_and_broadcast() -> None:
    subnet = ipam.complete(Subnet("10.5.0.0/30"))
    assert ipam.free_address(subnet, []) == "10.5.0.2"
    with pytest.raises(Conflict, match="no free IP"):
        ipam.free_address(subnet, ["10.5.0.2"])


def test_free_address_stays_in_the_lease_range() -> None:
    subnet = ipam.complete(Subnet("10.5.0.0/24", "", "10.5.0.100", "10.5.0.101"))
    assert ipam.free_address(subnet, ["10.5.0.100"]) == "10.5.0.101"
    with pytest.raises(Conflict):
        ipam.free_address(subnet, ["10.5.0.100", "10.5.0.101"])


def test_static_addresses_are_checked() -> None:
    subnet = ipam.complete(Subnet("10.5.0.0/24"))
    ipam.check_static(subnet, "10.5.0.9", ["10.5.0.2"])
    with pytest.raises(InvalidArgument):
        ipam.check_static(subnet, "10.6.0.9", [])
    with pytest.raises(InvalidArgument):
        ipam.check_static(subnet, "10.5.0.255", [])
    with pytest.raises(Conflict, match="gateway"):
        ipam.check_static(subnet, "10.5.0.1", [])
    with pytest.raises(Conflict, match="in use"):
        ipam.check_static(subnet, "10.5.0.2", ["10.5.0.2"])


def test_host_routes_reads_both_tables_without_defaults() -> None:
    ipv4 = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    )
    ipv6 = (
        "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001 br0\n"
        "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n"
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001 lo\n"
    )
    assert ipam.host_routes(ipv4, ipv6) == ["10.0.0.0/16", "fd00::/64"]
