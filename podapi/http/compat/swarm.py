"""Docker's swarm routes, answered as a Docker daemon that is in no swarm answers them.

podapi, like Podman, runs no swarm.  Podman answers a catch-all 503 ("Podman does
not support service") under ``/swarm/``, ``/nodes/``, ``/services/``, ``/tasks/``,
``/configs/``; we serve Docker's own routes (``daemon/server/router/swarm``) with
the status and message Docker's cluster gives a node whose ``LocalNodeState`` is
``inactive`` (``daemon/cluster``), because clients act on them: docker-py's
``leave_swarm(force=True)`` accepts the 503 of ``/swarm/leave`` and raises on
anything else, and the docker CLI prints the message.

* ``POST /swarm/leave``: 503 "This node is not part of a swarm" (``errNoSwarm``).
* ``POST /swarm/init`` and ``/swarm/join``: Docker would create or join a swarm; we
  cannot, so 503 with Podman's "does not support service" message.
* every other route: 503 "This node is not a swarm manager. Use "docker swarm
  init" ..." (``errNoManager`` of a node without a swarm).

``/secrets*`` is not registered here: Podman serves its own secrets on those
compat paths, and that route group will own them.
"""

from collections.abc import Awaitable, Callable
from typing import NoReturn

from podapi.errors import ServiceUnavailable
from podapi.http.call import ApiCall
from podapi.http.routing import Router

NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
    "to connect this node to swarm and try again."
)
NOT_IN_A_SWARM = "This node is not part of a swarm"

#: Docker's swarm routes (method, path) answered with :data:`NOT_A_MANAGER`.
MANAGER_ROUTES = (
    ("GET", "/swarm"),
    ("GET", "/swarm/unlockkey"),
    ("POST", "/swarm/update"),
    ("POST", "/swarm/unlock"),
    ("GET", "/services"),
    ("POST", "/services/create"),
    ("GET", "/services/<id>"),
    ("DELETE", "/services/<id>"),
    ("POST", "/services/<id>/update"),
    ("GET", "/services/<id>/logs"),
    ("GET", "/nodes"),
    ("GET", "/nodes/<id>"),
    ("DELETE", "/nodes/<id>"),
    ("POST", "/nodes/<id>/update"),
    ("GET", "/tasks"),
    ("GET", "/tasks/<id>"),
    ("GET", "/tasks/<id>/logs"),
    ("GET", "/configs"),
    ("POST", "/configs/create"),
    ("GET", "/configs/<id>"),
    ("DELETE", "/configs/<id>"),
    ("POST", "/configs/<id>/update"),
)


def _unavailable(message: str | None) -> Callable[..., Awaitable[NoReturn]]:
    """A handler answering 503 with ``message`` (None: Podman's "does not support")."""

    async def handler(call: ApiCall, **_: str) -> NoReturn:
        text = message or f"Podman does not support service: {call.path}"
        raise ServiceUnavailable(text, cause=text)

    return handler


class CompatSwarmRoutes:
    """Docker's ``/swarm*``, ``/nodes*``, ``/services*``, ``/tasks*``, ``/configs*``."""

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.compat("POST", "/swarm/leave", _unavailable(NOT_IN_A_SWARM))
        router.compat("POST", "/swarm/init", _unavailable(None))
        router.compat("POST", "/swarm/join", _unavailable(None))
        for method, path in MANAGER_ROUTES:
            router.compat(method, path, _unavailable(NOT_A_MANAGER))
