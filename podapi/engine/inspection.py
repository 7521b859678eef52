"""What a container inspect shows beyond its row: its files, runtime, cgroup and capabilities.

Both dialects' inspect encoders read one :class:`ContainerDetails`, so the HTTP
layer never asks the engine for paths, host facts or capability rules itself.
"""

from attrs import frozen

from podapi.engine.layout import ContainerPaths
from podapi.engine.state.containers import ContainerRecord


@frozen
class ContainerDetails:
    """A container as ``docker inspect`` / ``podman container inspect`` describe it.

    :ivar record: the stored container.
    :ivar paths: its files (config.json, hosts, logs, pid files, overlay dirs).
    :ivar runtime: the OCI runtime's name (``runc``, ``crun``), or "" when none was found.
    :ivar default_network: the server's default network (Docker clients see ``bridge``).
    :ivar capabilities: the capabilities its process gets (Docker's rules over cap-add/drop).
    :ivar cgroup_path: its cgroup, relative to the cgroup root.
    """

    record: ContainerRecord
    paths: ContainerPaths
    runtime: str
    default_network: str
    capabilities: tuple[str, ...]
    cgroup_path: str
