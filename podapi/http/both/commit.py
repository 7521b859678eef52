"""What ``POST /commit`` (Docker) and ``POST /libpod/commit`` (Podman) share: the options.

Query parameters: ``container``, ``repo``, ``tag``, ``comment``, ``author``,
``pause``, ``changes`` (repeatable; a value may hold several instructions,
one per line, as Podman accepts) and, on libpod, ``format``.  The body may be
a Docker ``Config`` whose image keys override the container's (Docker's
commit; Podman 4.3.1 reads no body, newer Podman does).

Deliberate differences from Podman 4.3.1:

* ``pause`` defaults to true on the compat tree, as Docker documents it (the
  docker CLI only sends ``pause=0``); 4.3.1 leaves it false when absent, as it
  still does (and we do) on the libpod tree.
* The compat ``Id`` is ``sha256:<hex>`` as Docker answers; 4.3.1 sends the bare hex.
* Bad ``changes``, ``format`` or a comment with ``format=oci`` are 400 (4.3.1: 500).
* ``format=docker`` is accepted, but the image is stored with an OCI manifest
  like every local image here; a push writes a Docker manifest anyway.
"""

from typing import Any

from podapi.engine.commit import CommitOptions
from podapi.engine.containerspec import healthcheck_from_docker
from podapi.engine.engine import Engine
from podapi.engine.state.images import ImageRecord
from podapi.http.both.images import podman_name
from podapi.http.call import ApiCall, BadRequest
from podapi.storage import reference


def _strings(body: dict[str, Any], key: str) -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, str) and key in ("Cmd", "Entrypoint"):
        return [value]  # Docker's strslice takes a lone string too
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"json: {key} must be a list of strings")
    return value


def _of_type(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        raise BadRequest(f"json: cannot unmarshal {type(value).__name__} into field {key}")
    return value


def decode_overrides(body: Any) -> dict[str, Any]:
    """The image keys of a Docker ``Config`` body (others, such as ``Hostname``, are ignored)."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("the commit body must be a JSON object (a container Config)")
    overrides: dict[str, Any] = {
        key: _strings(body, key) for key in ("Cmd", "Entrypoint", "Env", "OnBuild")
    }
    for key in ("User", "WorkingDir", "StopSignal"):
        overrides[key] = _of_type(body, key, str)
    for key in ("Labels", "ExposedPorts", "Volumes", "Healthcheck"):
        overrides[key] = _of_type(body, key, dict)
    labels = overrides["Labels"] or {}
    if not all(isinstance(v, str) for v in labels.values()):
        raise BadRequest("json: Labels values must be strings")
    if overrides["Healthcheck"]:
        healthcheck_from_docker(overrides["Healthcheck"])  # its types, checked
    return {key: value for key, value in overrides.items() if value is not None}


def _changes(call: ApiCall) -> list[str]:
    return [line for value in call.texts("changes") for line in value.split("\n")]


def _target(call: ApiCall) -> str | None:
    """The name to tag with: ``repo`` (and ``tag``), normalised as each tree does."""
    repo = call.text("repo")
    if not repo:
        return None  # Docker ignores a tag without a repository
    tag = call.text("tag") or None
    ref = podman_name(repo, tag) if call.libpod else reference.join(repo, tag).name
    if "@" in ref:
        raise BadRequest(f"refusing to create a tag with a digest reference: {ref}")
    return ref


async def commit_image(
    call: ApiCall, engine: Engine, *, pause_default: bool, comment: str
) -> ImageRecord:
    """Commit the ``container`` of the query with the options both trees read."""
    options = CommitOptions(
        name=_target(call),
        author=call.text("author") or "",
        comment=comment,
        changes=_changes(call),
        overrides=decode_overrides(call.json_body()),
        pause=call.flag("pause", pause_default),
        squash=call.libpod and call.flag("squash"),
    )
    return await engine.committer.commit(call.text("container") or "", options)
