"""Network route pieces both trees share: joining and leaving a network.

``connect`` bodies differ per tree (Docker's ``EndpointConfig``, Podman's
``NetworkConnectOptions``); the checks after decoding and ``disconnect`` are the same.
"""

from podapi.engine.containerspec import NetworkEndpoint
from podapi.engine.engine import Engine
from podapi.http.bodyfields import json_object, text
from podapi.http.call import ApiCall, BadRequest


async def join_network(engine: Engine, container: str, endpoint: NetworkEndpoint) -> None:
    """Join ``container`` to the network of ``endpoint`` (400 if no container is named)."""
    if not container:
        raise BadRequest("the connect request names no Container")
    await engine.connect_network(container, endpoint)


async def leave_network(call: ApiCall, engine: Engine, network: str) -> None:
    """``POST .../networks/{name}/disconnect``: ``{"Container", "Force"}`` (either case)."""
    body = json_object(call.json_body(empty_ok=False), "the disconnect request")
    container = text(body, "Container", "disconnect request") or text(
        body, "container", "disconnect request"
    )
    if not container:
        raise BadRequest("the disconnect request names no Container")
    await engine.disconnect_network(container, network)
