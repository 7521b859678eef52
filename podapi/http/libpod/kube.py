"""Podman's kube routes: ``kube generate`` (``GET /libpod/generate/kube``, the 4.3.1
client's path, and ``GET /libpod/kube/generate``), ``kube play`` (``POST
/libpod/play/kube``, the 4.3.1 client's, and ``/libpod/kube/play``) and ``kube down``
(``DELETE`` on the same two paths).

Play's query: ``start`` (default true), ``network`` (repeatable), ``replace`` (``kube
down`` first; the 4.3.1 client does that itself), ``configMaps`` (ConfigMap files on the
server), ``tlsVerify``, ``publishPorts`` (``-p`` syntax, newer Podman).  Down's:
``force`` (the named volumes too).  Both answer 4.3.1's ``PlayKubeReport`` JSON.  Bad
YAML, an unknown kind or a bad field is 400, a name in use 409, an image that cannot be
had or a pod to take down that is not there 404 (4.3.1: 500 for all).

Query: ``names`` (repeatable: containers, volumes), ``service`` (a NodePort Service for
the published ports), and, beyond 4.3.1 (newer Podman has them), ``type`` (``pod`` or
``deployment``) and ``replicas``.  The answer is the documents as YAML, ``---`` between
them, after Podman's comment header.

Differences from Podman 4.3.1, on purpose: the body is served as ``application/yaml``
(4.3.1 sends ``application/x-tar``, marked FIXME in its handler; its client reads the
body whatever the type); an unknown name is 404 and bad parameters 400 (4.3.1: 500 for
both); the document differences are listed in ``podapi/engine/kube/generate.py``.
"""

from typing import TYPE_CHECKING, Any

from klein import Response

from podapi import __version__
from podapi.engine.engine import Engine
from podapi.http.call import ApiCall
from podapi.http.responses import body_response, json_response
from podapi.http.routing import Router

if TYPE_CHECKING:
    from podapi.engine.kube.player import DownReport, PlayReport

YAML = "application/yaml"
HEADER = (
    "# Save the output of this file and use kubectl create -f to import\n"
    "# it into Kubernetes.\n"
    "#\n"
    f"# Created with podapi-{__version__}\n"
)


def _teardown(report: "DownReport | None") -> dict[str, Any]:
    if report is None:
        return {"StopReport": None, "RmReport": None}
    return {
        "StopReport": [{"Errs": list(r.errors) or None, "Id": r.id} for r in report.stopped],
        "RmReport": [{"Err": error or None, "Id": pod_id} for pod_id, error in report.removed],
    }


def encode_play(report: "PlayReport | None", down: "DownReport | None" = None) -> dict[str, Any]:
    """Podman 4.3.1's ``PlayKubeReport`` (Go's nil slices as null)."""
    pods = report.pods if report is not None else ()
    volumes = report.volumes if report is not None else ()
    secrets = report.secrets if report is not None else ()
    return {
        "Pods": [
            {
                "ID": pod.id,
                "Containers": list(pod.containers) or None,
                "InitContainers": None,
                "Logs": None,
                "ContainerErrors": list(pod.container_errors) or None,
            }
            for pod in pods
        ]
        or None,
        "Volumes": [{"Name": name} for name in volumes] or None,
        **_teardown(down),
        "Secrets": [{"CreateReport": {"ID": secret_id}} for secret_id in secrets] or None,
    }


def dump_documents(documents: list[dict[str, Any]]) -> bytes:
    """The documents as one YAML stream: keys sorted, no line folding, ``---`` between."""
    import yaml  # noqa: PLC0415 (on first use: PyYAML costs some 20 ms of every cold start)

    parts = [
        yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=2**31 - 1)
        for doc in documents
    ]
    return (HEADER + "---\n".join(parts)).encode()


class LibpodKubeRoutes:
    """``kube generate``, ``kube play`` and ``kube down``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.libpod("GET", "/generate/kube", self.generate)
        router.libpod("GET", "/kube/generate", self.generate)
        for path in ("/play/kube", "/kube/play"):
            router.libpod("POST", path, self.play)
            router.libpod("DELETE", path, self.down)

    async def generate(self, call: ApiCall) -> Response:
        """``GET /libpod/kube/generate?names=&service=&type=&replicas=``: 200 YAML."""
        # The kube code loads on first use (see Engine.kube_generator).
        from podapi.engine.kube.service import GenerateOptions  # noqa: PLC0415

        options = GenerateOptions(
            service=call.flag("service"),
            kind=call.text("type") or "pod",
            replicas=call.integer("replicas", 1) or 0,
        )
        documents = await self._engine.kube_generator.generate(call.texts("names"), options)
        return body_response(dump_documents(documents), YAML)

    async def play(self, call: ApiCall) -> Response:
        """``POST /libpod/kube/play``: the YAML body played; 200 ``PlayKubeReport``."""
        from podapi.engine.kube.play import PlayOptions  # noqa: PLC0415

        options = PlayOptions(
            networks=tuple(call.texts("network")), publish=tuple(call.texts("publishPorts"))
        )
        report = await self._engine.kube_player.play(
            call.body_bytes(),
            options,
            config_map_files=call.texts("configMaps"),
            start=call.flag("start", True),
            replace=call.flag("replace"),
            tls_verify=call.flag("tlsVerify") if call.has("tlsVerify") else None,
        )
        return json_response(encode_play(report))

    async def down(self, call: ApiCall) -> Response:
        """``DELETE /libpod/kube/play?force=``: what the YAML body made, removed."""
        report = await self._engine.kube_player.down(call.body_bytes(), force=call.flag("force"))
        return json_response(encode_play(None, report))
