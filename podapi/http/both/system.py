"""System routes shared by both trees: ``version``, ``swagger`` (``_ping``: :mod:`.ping`).

Podman serves ``version`` with the same handler on both trees
(``compat.VersionHandler``); so do we.  The swagger document
is our own, served on both trees (Podman only has ``/libpod/swagger`` and
answers 500 when the file is not installed).
"""

from importlib import resources
from typing import Any

from klein import Response

from podapi import (
    COMPAT_API_VERSION,
    COMPAT_MIN_API_VERSION,
    LIBPOD_API_VERSION,
    LIBPOD_MIN_API_VERSION,
    __version__,
)
from podapi.engine.engine import Engine
from podapi.engine.system import Versions
from podapi.engine.times import rfc3339_nano
from podapi.http.call import ApiCall
from podapi.http.responses import body_response, json_response
from podapi.http.routing import Router


def _component(name: str, version: str, package: str) -> dict[str, Any]:
    return {"Name": name, "Version": version, "Details": {"Package": package}}


def version_body(versions: Versions) -> dict[str, Any]:
    """The ``/version`` document (``entities.ComponentVersion`` in Podman)."""
    facts, components = versions.facts, versions.components
    build_time = rfc3339_nano(0)
    details = {
        "APIVersion": LIBPOD_API_VERSION,
        "Arch": facts.arch,
        "BuildTime": build_time,
        "Experimental": "false",
        "GitCommit": "",
        "GoVersion": f"python{facts.python_version}",
        "KernelVersion": facts.kernel,
        "MinAPIVersion": LIBPOD_MIN_API_VERSION,
        "Os": "linux",
    }
    parts = [
        {"Name": "Podman Engine", "Version": LIBPOD_API_VERSION, "Details": details},
        {"Name": "podapi", "Version": __version__, "Details": {"Python": facts.python_version}},
    ]
    if components.conmon is not None:
        parts.append(_component("Conmon", components.conmon.first_line, components.conmon.package))
    if components.runtime is not None:
        parts.append(
            _component(
                f"OCI Runtime ({components.runtime.name})",
                components.runtime.version,
                components.runtime.package,
            )
        )
    return {
        "Platform": {"Name": f"linux/{facts.arch}/{facts.os.id}-{facts.os.version_id}"},
        "Components": parts,
        "Version": LIBPOD_API_VERSION,
        "ApiVersion": COMPAT_API_VERSION,
        "MinAPIVersion": COMPAT_MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": f"python{facts.python_version}",
        "Os": "linux",
        "Arch": facts.arch,
        "KernelVersion": facts.kernel,
        "BuildTime": build_time,
    }


class SystemRoutes:
    """``version`` and ``swagger`` on both trees."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Read once at start-up: a small packaged file, never re-read per request.
        self._openapi = resources.files("podapi.http").joinpath("openapi.yaml").read_bytes()

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.compat("GET", "/version", self.version, early=True)
        router.libpod("GET", "/version", self.version, early=True)
        router.compat("GET", "/swagger", self.swagger)
        router.libpod("GET", "/swagger", self.swagger)

    async def version(self, call: ApiCall) -> Response:
        """``GET /version`` (both trees): component versions, probed once at start."""
        return json_response(version_body(await self._engine.system.versions()))

    async def swagger(self, call: ApiCall) -> Response:
        """``GET /swagger``: podapi's OpenAPI document (YAML)."""
        return body_response(self._openapi, "text/yaml")
