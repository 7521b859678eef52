"""Podman's ``kube generate`` routes: ``GET /libpod/generate/kube`` (the 4.3.1 client's
path) and ``GET /libpod/kube/generate``.

Query: ``names`` (repeatable: containers, volumes), ``service`` (a NodePort Service for
the published ports), and, beyond 4.3.1 (newer Podman has them), ``type`` (``pod`` or
``deployment``) and ``replicas``.  The answer is the documents as YAML, ``---`` between
them, after Podman's comment header.

Differences from Podman 4.3.1, on purpose: the body is served as ``application/yaml``
(4.3.1 sends ``application/x-tar``, marked FIXME in its handler; its client reads the
body whatever the type); an unknown name is 404 and bad parameters 400 (4.3.1: 500 for
both); the document differences are listed in ``podapi/engine/kube/generate.py``.
"""

from typing import Any

import yaml
from klein import Response

from podapi import __version__
from podapi.engine.engine import Engine
from podapi.engine.kube.service import GenerateOptions
from podapi.http.call import ApiCall
from podapi.http.responses import body_response
from podapi.http.routing import Router

YAML = "application/yaml"
HEADER = (
    "# Save the output of this file and use kubectl create -f to import\n"
    "# it into Kubernetes.\n"
    "#\n"
    f"# Created with podapi-{__version__}\n"
)


def dump_documents(documents: list[dict[str, Any]]) -> bytes:
    """The documents as one YAML stream: keys sorted, no line folding, ``---`` between."""
    parts = [
        yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=2**31 - 1)
        for doc in documents
    ]
    return (HEADER + "---\n".join(parts)).encode()


class LibpodKubeRoutes:
    """``/libpod/generate/kube`` and ``/libpod/kube/generate``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.libpod("GET", "/generate/kube", self.generate)
        router.libpod("GET", "/kube/generate", self.generate)

    async def generate(self, call: ApiCall) -> Response:
        """``GET /libpod/kube/generate?names=&service=&type=&replicas=``: 200 YAML."""
        options = GenerateOptions(
            service=call.flag("service"),
            kind=call.text("type") or "pod",
            replicas=call.integer("replicas", 1) or 0,
        )
        documents = await self._engine.kube_generator.generate(call.texts("names"), options)
        return body_response(dump_documents(documents), YAML)
