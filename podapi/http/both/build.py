"""``POST /build`` (Docker) and ``POST /libpod/build`` (Podman): one handler, as Podman
serves both with ``compat.BuildImage``.

The body is the context tar (twisted.web has already spooled it to a file);
the engine unpacks it in its thread pool.  The answer is Docker's JSON-lines
stream: ``{"stream": ...}`` per line of progress, ``{"aux": {"ID": ...}}``,
and on failure ``{"errorDetail": {"code": N, "message": ...}, "error": ...}``
with a failing RUN's exit status as ``code``, so ``docker build`` exits with it
(Podman 4.3.1 sends no code and its clients exit 1).  An error before the
first step (a bad tar, no Dockerfile, a syntax error) is a plain 4xx, as
moby answers when nothing was flushed yet.  The libpod tree ends with the
image ID on a line of its own, which ``podman --remote build`` and podman-py
take the ID from (buildah's last line).
"""

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from klein import Response

from podapi.engine.engine import Engine
from podapi.engine.ocimodel import Resources
from podapi.errors import PodapiError
from podapi.http.both.images import podman_name
from podapi.http.call import ApiCall, BadRequest
from podapi.http.routing import Router
from podapi.http.streams import JsonLines
from podapi.storage import reference
from podapi.storage.registry import registry_config

if TYPE_CHECKING:
    from podapi.engine.imagebuild.builder import BuildOptions

#: buildah's ``NetworkConfigurationPolicy`` numbers, as ``podman --remote build`` sends them.
_BUILDAH_NETWORK = {"0": "bridge", "1": "none", "2": "bridge"}
BUILDKIT_MESSAGE = (
    "BuildKit is not supported by this server: set DOCKER_BUILDKIT=0 to build with the "
    "classic builder"
)


def _json_arg(call: ApiCall, name: str, kind: type) -> Any:
    raw = call.text(name)
    if not raw:
        return kind()
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise BadRequest(f"failed to parse {name}: {e}") from None
    if not isinstance(value, kind):
        raise BadRequest(f"failed to parse {name}: not a JSON {kind.__name__}")
    return value


def _strings(values: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


def _labels(call: ApiCall) -> dict[str, str]:
    """``labels``: Docker's JSON object, or the JSON list of ``KEY[=VALUE]`` that
    ``podman --remote build --label`` sends (Podman's handler takes both)."""
    raw = call.text("labels") or ""
    if not raw.lstrip().startswith("["):
        return _strings(_json_arg(call, "labels", dict))
    pairs = (str(item).partition("=") for item in _json_arg(call, "labels", list))
    return {key: value for key, _, value in pairs}


def _dockerfile(call: ApiCall) -> str:
    """``dockerfile``: a path in the context (libpod sends a JSON list of them)."""
    value = call.text("dockerfile") or ""
    if value.startswith("["):
        names = _json_arg(call, "dockerfile", list)
        value = str(names[0]) if names else ""
    if value.startswith(("http://", "https://", "git@", "github.com/")):
        raise BadRequest(f"remote Dockerfiles are not supported: {value}")
    return value


def _network(call: ApiCall) -> str:
    mode = call.text("networkmode") or ""
    if call.libpod and mode in _BUILDAH_NETWORK:
        return _BUILDAH_NETWORK[mode]
    if mode in ("", "default"):
        return "bridge"
    if mode not in ("bridge", "host", "none"):
        raise BadRequest(f"network mode {mode!r} is not supported for builds")
    return mode


def _extra_hosts(call: ApiCall) -> tuple[str, ...]:
    raw = call.text("extrahosts") or ""
    if raw.startswith("["):
        return tuple(str(h) for h in _json_arg(call, "extrahosts", list))
    return tuple(h for value in call.texts("extrahosts") for h in value.split(",") if h)


def build_options(call: ApiCall) -> "BuildOptions":
    """The build request's parameters, as the tree's clients send them."""
    # The build code loads on first use (see Engine.builder).
    from podapi.engine.imagebuild.builder import BuildOptions  # noqa: PLC0415
    from podapi.engine.imagebuild.steps import RunOptions  # noqa: PLC0415

    if call.text("version") == "2":
        raise BadRequest(BUILDKIT_MESSAGE)
    if call.text("remote"):
        raise BadRequest("remote build contexts are not supported: send the context as a tar")
    name_of = podman_name if call.libpod else (lambda t: reference.parse(t).name)
    tags = tuple(name_of(t) for value in call.texts("t") for t in [value] if t)
    pull = call.flag("pull") or (call.text("pullpolicy") or "").lower() in ("always", "newer")
    nocache = call.flag("nocache") or (call.libpod and not call.flag("layers", default=True))
    resources = Resources(
        memory=call.integer("memory") or None,
        memory_swap=call.integer("memswap") or None,
        cpu_shares=call.integer("cpushares") or None,
        cpu_period=call.integer("cpuperiod") or None,
        cpu_quota=call.integer("cpuquota") or None,
        cpuset_cpus=call.text("cpusetcpus") or None,
    )
    return BuildOptions(
        dockerfile=_dockerfile(call),
        tags=tags,
        build_args=_strings(_json_arg(call, "buildargs", dict)),
        labels=_labels(call),
        quiet=call.flag("q"),
        nocache=nocache,
        pull=pull,
        remove=call.flag("rm", default=True) or call.flag("forcerm"),
        target=call.text("target") or "",
        platform=call.text("platform") or "",
        run=RunOptions(
            network_mode=_network(call),
            resources=resources,
            shm_size=call.integer("shmsize") or None,
            extra_hosts=_extra_hosts(call),
        ),
        registry_auth=registry_config(call.header("X-Registry-Config")),
        short_names=call.short_names,
    )


class _Stream:
    """The build's JSON lines; the headers go with the first line."""

    def __init__(self, call: ApiCall) -> None:
        self._call = call
        self._out: JsonLines | None = None

    @property
    def started(self) -> bool:
        return self._out is not None

    def _write(self, value: dict[str, Any]) -> None:
        if self._out is None:
            self._out = JsonLines(self._call.request)
        self._out.write(value)

    def stream(self, text: str) -> None:
        self._write({"stream": text})

    def built(self, image_id: str, tags: tuple[str, ...]) -> None:
        """Docker: the ``aux`` ID, ``Successfully built``/``tagged`` (only the ID with
        ``q``); Podman: buildah's ``Successfully tagged`` lines and the bare ID last."""
        quiet = self._call.flag("q")
        if self._call.libpod:
            for name in [] if quiet else tags:
                self.stream(f"Successfully tagged {name}\n")
            self.stream(f"{image_id}\n")
            return
        self._write({"aux": {"ID": f"sha256:{image_id}"}})
        if quiet:
            self.stream(f"sha256:{image_id}\n")
            return
        self.stream(f"Successfully built {image_id[:12]}\n")
        for name in tags:
            self.stream(f"Successfully tagged {reference.docker_name(name)}\n")

    def error(self, message: str, code: int) -> None:
        self._write({"errorDetail": {"code": code, "message": message}, "error": message})


class BuildRoutes:
    """``/build`` on both trees."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.compat("POST", "/build", self.build)
        router.libpod("POST", "/build", self.build)

    async def build(self, call: ApiCall) -> Response | None:
        """Build the image the context's Dockerfile describes; see the module docstring.

        The libpod tree refuses a JSON body type as Podman's handler does (the compat
        tree takes any type, as Docker).
        """
        kind = (call.header("Content-Type") or "").partition(";")[0].strip()
        if call.libpod and kind == "application/json":
            refused = (
                'Content-Type: application/json is not supported. Should be "application/x-tar"'
            )
            raise BadRequest(refused, cause=refused)
        from podapi.engine.imagebuild.builder import BuildFailed  # noqa: PLC0415

        options = build_options(call)
        out = _Stream(call)
        content = call.request.content
        if content is not None:
            content.seek(0)
        try:
            await self._engine.builder.build(content, options, out)
        except BuildFailed as e:
            out.error(e.message, e.code)
            return None
        except PodapiError as e:
            if not out.started:
                raise
            out.error(e.message, 1)
        return None
