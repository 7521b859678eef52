"""Podman's secret routes: create, list, inspect (``showsecret``), exists, remove.

Shape: ``entities.SecretInfoReport`` (``http/both/secrets.py``), with
``SecretData`` only when ``showsecret=true`` is asked.  Create takes the secret as
the raw request body whatever its Content-Type, and ``name``, ``driver``,
``driveropts``, ``labels`` (JSON objects, as Podman's bindings send maps, or repeated
``key=value``), ``replace`` and ``ignore`` in the query; it answers 200 ``{"ID"}``.

Differences from Podman 4.3.1, on purpose: a name in use is 409, bad names, sizes,
drivers and filters 400 (4.3.1: 500); removing a secret a container uses is 409;
``DELETE ?all=true`` removes every secret (4.3.1 ignores ``all`` on the API).
"""

import json

from klein import Response

from podapi.engine.engine import Engine
from podapi.engine.state.secrets import no_such_secret
from podapi.http.both.secrets import encode_report
from podapi.http.call import ApiCall, BadRequest
from podapi.http.responses import json_response, no_content
from podapi.http.routing import Router


def query_map(call: ApiCall, name: str) -> dict[str, str]:
    """A ``map[string]string`` query parameter: Podman's bindings send a JSON object;
    ``key=value`` values (repeatable) are taken too."""
    found: dict[str, str] = {}
    for raw in call.texts(name):
        if not raw:
            continue
        if raw.lstrip().startswith("{"):
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = None
            if not isinstance(decoded, dict) or not all(
                isinstance(v, str) for v in decoded.values()
            ):
                raise BadRequest(
                    f"failed to parse parameters for {call.path}: {name} must be a JSON "
                    "object of strings"
                )
            found.update(decoded)
        else:
            key, sep, value = raw.partition("=")
            if not sep or not key:
                raise BadRequest(
                    f"failed to parse parameters for {call.path}: {name} wants key=value"
                )
            found[key] = value
    return found


class LibpodSecretRoutes:
    """``/libpod/secrets``."""

    def __init__(self, engine: Engine) -> None:
        self._secrets = engine.secrets

    def register(self, router: Router) -> None:
        """Add the routes."""
        add = router.libpod
        add("POST", "/secrets/create", self.create)
        add("GET", "/secrets/json", self.list_secrets)
        add("GET", "/secrets/<name>/json", self.inspect)
        add("GET", "/secrets/<name>/exists", self.exists)
        add("DELETE", "/secrets/<name>", self.remove)

    async def create(self, call: ApiCall) -> Response:
        """``POST /libpod/secrets/create?name=&driver=&driveropts=&labels=&replace=&ignore=``:
        the body is the secret; 200 ``{"ID"}``."""
        record = await self._secrets.create(
            call.text("name") or "",
            call.body_bytes(),
            driver=call.text("driver") or "",
            options=query_map(call, "driveropts"),
            labels=query_map(call, "labels"),
            replace=call.flag("replace"),
            ignore=call.flag("ignore"),
        )
        return json_response({"ID": record.id})

    async def list_secrets(self, call: ApiCall) -> Response:
        """``GET /libpod/secrets/json?filters=`` (``name``, ``id``, ``label``)."""
        found = await self._secrets.selected(call.filters())
        return json_response([encode_report(r) for r in found])

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/secrets/{name}/json?showsecret=``: the data only when asked."""
        if not call.flag("showsecret"):
            return json_response(encode_report(await self._secrets.get(name)))
        record, data = await self._secrets.reveal(name)
        return json_response(
            {**encode_report(record), "SecretData": data.decode("utf-8", "replace")}
        )

    async def exists(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/secrets/{name}/exists``: 204 or 404."""
        if await self._secrets.find(name) is None:
            raise no_such_secret(name)
        return no_content()

    async def remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /libpod/secrets/{name}?all=``: 204; 404 unknown; 409 in use."""
        if call.flag("all"):
            await self._secrets.remove_all()
        else:
            await self._secrets.remove(name)
        return no_content()
