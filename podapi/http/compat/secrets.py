"""Docker's secret routes as Podman serves them: list, create, inspect, remove, update.

Shape: Podman's ``SecretInfoReportCompat`` (``pkg/api/handlers/compat/secrets.go``):
the report of ``http/both/secrets.py`` plus Docker's ``Version{"Index": 1}``; the
create body is Docker's ``SecretSpec`` (``Name``, ``Data`` in base64, ``Labels``,
``Driver{Name, Options}``).

Differences from Podman 4.3.1, on purpose (Docker's answers): create is 201 (4.3.1:
200), unversioned ``DELETE /secrets/{id}`` works (4.3.1 had only ``/secret/{name}``
there), labels are shown as given and no host path appears; bad bodies, ``Data`` that
is not base64 and bad filters are 400 (4.3.1: 500 or ignored).
"""

import binascii
from base64 import b64decode

from klein import Response

from podapi.engine.engine import Engine
from podapi.errors import NotImplementedHere
from podapi.http.bodyfields import json_object, string_map, text
from podapi.http.both.secrets import encode_report
from podapi.http.call import ApiCall, BadRequest
from podapi.http.responses import json_response, no_content
from podapi.http.routing import Router

#: How 400 answers name a secret create body.
WHAT = "the secret create body"


def _compat(report: dict[str, object]) -> dict[str, object]:
    # Podman has no secret updates: the version stays 1.
    return {**report, "Version": {"Index": 1}}


class CompatSecretRoutes:
    """``/secrets``."""

    def __init__(self, engine: Engine) -> None:
        self._secrets = engine.secrets

    def register(self, router: Router) -> None:
        """Add the routes."""
        add = router.compat
        add("GET", "/secrets", self.list_secrets)
        add("POST", "/secrets/create", self.create)
        add("GET", "/secrets/<name>", self.inspect)
        add("DELETE", "/secrets/<name>", self.remove)
        add("POST", "/secrets/<name>/update", self.update)

    async def list_secrets(self, call: ApiCall) -> Response:
        """``GET /secrets?filters=`` (``name``, ``id``, ``label``): ``[SecretInfoReportCompat]``."""
        found = await self._secrets.selected(call.filters())
        return json_response([_compat(encode_report(r)) for r in found])

    async def create(self, call: ApiCall) -> Response:
        """``POST /secrets/create`` (Docker's ``SecretSpec``): 201 ``{"ID"}``; 409 for a
        name in use."""
        body = json_object(call.json_body(empty_ok=False), WHAT)
        encoded = text(body, "Data", WHAT)
        try:
            data = b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"{WHAT}.Data must be base64 (RFC 4648)") from None
        driver = body.get("Driver") or {}
        if not isinstance(driver, dict):
            raise BadRequest(f"{WHAT}.Driver must be an object (Name, Options)")
        record = await self._secrets.create(
            text(body, "Name", WHAT),
            data,
            driver=text(driver, "Name", f"{WHAT}.Driver"),
            options=string_map(driver, "Options", f"{WHAT}.Driver"),
            labels=string_map(body, "Labels", WHAT),
        )
        return json_response({"ID": record.id}, 201)

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /secrets/{name}``: by name, ID or ID prefix; 404 otherwise."""
        return json_response(_compat(encode_report(await self._secrets.get(name))))

    async def remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /secrets/{name}``: 204; 404 unknown; 409 while a container uses it."""
        await self._secrets.remove(name)
        return no_content()

    async def update(self, call: ApiCall, name: str) -> Response:
        """``POST /secrets/{name}/update``: 501 "update is not supported", as Podman."""
        raise NotImplementedHere("update is not supported", cause="update is not supported")
