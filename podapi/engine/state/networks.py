"""Network rows in the state database (blocking: run on the DB executor).

A network is stored as netavark's JSON definition.  ``network_addresses``
holds the addresses containers use while they run: allocating and releasing
happen in the same transaction as the checks, so two containers starting at
once never get the same address.
"""

import json
import sqlite3
from collections.abc import Mapping, Sequence

from podapi.engine import ipam
from podapi.errors import Conflict, NoSuchNetwork
from podapi.oci.netavark import Network


def insert(conn: sqlite3.Connection, network: Network) -> None:
    """Store a new network; 409 when the name is taken."""
    if conn.execute("SELECT 1 FROM networks WHERE name = ?", (network.name,)).fetchone():
        raise Conflict(
            f"network name {network.name} already used: network already exists",
            cause="network already exists",
        )
    conn.execute(
        "INSERT INTO networks (name, id, definition) VALUES (?, ?, ?)",
        (network.name, network.id, json.dumps(network.to_json())),
    )


def load_all(conn: sqlite3.Connection) -> list[Network]:
    """Every stored network, by name."""
    rows = conn.execute("SELECT definition FROM networks ORDER BY name")
    return [Network.from_json(json.loads(row[0])) for row in rows]


def replace(conn: sqlite3.Connection, network: Network) -> None:
    """Store a changed definition of an existing network."""
    conn.execute(
        "UPDATE networks SET definition = ? WHERE name = ?",
        (json.dumps(network.to_json()), network.name),
    )


def delete(conn: sqlite3.Connection, name: str) -> None:
    """Forget a network (404 when there is none)."""
    if not conn.execute("DELETE FROM networks WHERE name = ?", (name,)).rowcount:
        raise NoSuchNetwork(f"unable to find network with name or ID {name}: network not found")


def allocate(
    conn: sqlite3.Connection,
    network: Network,
    container_id: str,
    static: Sequence[str] = (),
) -> list[str]:
    """One address per subnet of ``network`` for ``container_id`` (``static`` ones if asked)."""
    chosen = []
    for subnet in network.subnets:
        used = [
            row[0]
            for row in conn.execute(
                "SELECT address FROM network_addresses WHERE network = ?", (network.name,)
            )
        ]
        version = ipam.parse_subnet(subnet.subnet).version
        wanted = [a for a in static if ipam.parse_address(a).version == version]
        if wanted:
            ipam.check_static(subnet, wanted[0], used)
            address = wanted[0]
        else:
            address = ipam.free_address(subnet, used)
        conn.execute(
            "INSERT INTO network_addresses (network, address, container_id) VALUES (?, ?, ?)",
            (network.name, address, container_id),
        )
        chosen.append(address)
    return chosen


def release(
    conn: sqlite3.Connection, container_id: str, networks: Sequence[str] | None = None
) -> None:
    """Give back a container's addresses (on ``networks`` only, if given)."""
    if networks is None:
        conn.execute("DELETE FROM network_addresses WHERE container_id = ?", (container_id,))
        return
    for name in networks:
        conn.execute(
            "DELETE FROM network_addresses WHERE container_id = ? AND network = ?",
            (container_id, name),
        )


def users(conn: sqlite3.Connection) -> Mapping[str, list[str]]:
    """Network name -> IDs of containers configured to join it."""
    found: dict[str, list[str]] = {}
    for container_id, spec in conn.execute("SELECT id, spec FROM containers"):
        for endpoint in json.loads(spec).get("networks") or ():
            found.setdefault(endpoint["name"], []).append(container_id)
    return found


def save_default(conn: sqlite3.Connection, network: Network) -> None:
    """Remember the server's default network (``podapi.cleanup`` has no options to say it)."""
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('default_network', ?)",
        (json.dumps(network.to_json()),),
    )


def load_default(conn: sqlite3.Connection) -> Network | None:
    """The default network the last server ran with, if any."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'default_network'").fetchone()
    return Network.from_json(json.loads(row[0])) if row else None
