"""The parts of the engine's API that ``podapi.oci`` defines: named here, so callers above
the engine (the HTTP handlers) never import ``podapi.oci``.

These types and pure rules live in ``podapi.oci`` because the I/O edge generates from
them or parses with them, and the engine must not copy them:

* :class:`Network`, :class:`Subnet`, :class:`Joined`: netavark's own network JSON
  (``oci/netavark.py`` writes it to netavark and reads its answer); the engine stores
  and serves exactly that shape.
* :class:`Resources`: the cgroup limits ``oci/spec.py`` writes into ``config.json``;
  a container's spec holds them as they are.
* :class:`BindString`, :func:`parse_bind`, :func:`mount_propagation`: Docker's bind
  strings and the mount option rules ``oci/mountopts.py`` applies when it mounts.
* :func:`effective_capabilities`: Docker's capability rules, which ``oci/spec.py``
  applies to the process (``every capability`` is the host's bounding set).
* :class:`BlkioEntry`: one row of the cgroup block I/O files ``oci/cgroupstats.py``
  reads for a stats sample.
* :class:`Component`: a helper binary and its version, probed by ``oci/probe.py``.
"""

from podapi.oci.capabilities import effective as effective_capabilities
from podapi.oci.cgroupstats import BlkioEntry
from podapi.oci.mountopts import BindString, parse_bind
from podapi.oci.mountopts import propagation as mount_propagation
from podapi.oci.netavark import Joined, Network, Subnet
from podapi.oci.probe import Component
from podapi.oci.spec import Resources

__all__ = [
    "BindString",
    "BlkioEntry",
    "Component",
    "Joined",
    "Network",
    "Resources",
    "Subnet",
    "effective_capabilities",
    "mount_propagation",
    "parse_bind",
]
