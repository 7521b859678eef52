"""Secret routes on both trees, without sockets: shapes, codes, filters, no data shown."""

import base64
import json
import os
import stat
from pathlib import Path

import pytest_twisted
from treq.testing import StubTreq

from podapi.engine.containerspec import SecretMount
from podapi.engine.engine import Engine
from podapi.engine.secrets import mount_destination
from podapi.http.call import BadRequest
from podapi.http.libpod.specgen import decode_specgen
from tests.http.conftest import Time

LIBPOD = "http://d/v4.3.1/libpod"
SECRET = b"hunter2-s3cret-value"


async def _create(api: StubTreq, name: str, data: bytes = SECRET, query: str = "") -> str:
    response = await api.post(f"{LIBPOD}/secrets/create?name={name}{query}", data=data)
    assert response.code == 200, await response.text()
    body = await response.json()
    return str(body["ID"])


async def _error(response: object, code: int, message: str) -> None:
    assert response.code == code  # type: ignore[attr-defined]
    body = await response.json()  # type: ignore[attr-defined]
    assert set(body) == {"cause", "message", "response"}
    assert body["response"] == code
    assert message in body["message"], body


@pytest_twisted.ensureDeferred
async def test_libpod_create_inspect_list_exists_remove(api: StubTreq, engine: Engine) -> None:
    """The raw body is the secret; inspect shows it only with showsecret; rm forgets it."""
    secret_id = await _create(api, "db-pass", query='&labels={"team":"a"}')
    assert len(secret_id) == 25 and int(secret_id, 16) >= 0
    inspect = await (await api.get(f"{LIBPOD}/secrets/db-pass/json")).json()
    assert inspect["ID"] == secret_id
    assert inspect["Spec"] == {
        "Name": "db-pass",
        "Driver": {"Name": "file", "Options": {}},
        "Labels": {"team": "a"},
    }
    assert "SecretData" not in inspect
    assert SECRET.decode() not in json.dumps(inspect)
    shown = await (await api.get(f"{LIBPOD}/secrets/{secret_id[:6]}/json?showsecret=true")).json()
    assert shown["SecretData"] == SECRET.decode()
    listed = await (await api.get(f"{LIBPOD}/secrets/json")).json()
    assert [s["ID"] for s in listed] == [secret_id]
    assert (await api.get(f"{LIBPOD}/secrets/db-pass/exists")).code == 204
    stored = Path(engine.layout.secrets_dir) / secret_id
    assert stored.read_bytes() == SECRET
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    assert (await api.delete(f"{LIBPOD}/secrets/db-pass")).code == 204
    assert not stored.exists()
    await _error(await api.get(f"{LIBPOD}/secrets/db-pass/exists"), 404, "no such secret")


@pytest_twisted.ensureDeferred
async def test_duplicate_is_409_and_replace_gives_a_new_id(
    api: StubTreq, engine: Engine, now: Time
) -> None:
    first = await _create(api, "token")
    await _error(
        await api.post(f"{LIBPOD}/secrets/create?name=token", data=b"x"), 409, "secret name in use"
    )
    created = (await (await api.get(f"{LIBPOD}/secrets/token/json")).json())["CreatedAt"]
    now.ns += 5_000_000_000
    second = await _create(api, "token", b"new-data", "&replace=true")
    assert second != first
    assert not (Path(engine.layout.secrets_dir) / first).exists()
    shown = await (await api.get(f"{LIBPOD}/secrets/token/json?showsecret=1")).json()
    assert shown["SecretData"] == "new-data"
    assert shown["CreatedAt"] == created != shown["UpdatedAt"]
    assert await _create(api, "token", b"ignored", "&ignore=true") == second


@pytest_twisted.ensureDeferred
async def test_bad_input_is_4xx(api: StubTreq) -> None:
    """Podman's messages: size (512000 bytes), names; unknown 404, bad filters 400."""
    await _error(
        await api.post(f"{LIBPOD}/secrets/create?name=big", data=b"x" * 512000),
        400,
        "secret data must be larger than 0 and less than 512000 bytes",
    )
    await _error(
        await api.post(f"{LIBPOD}/secrets/create?name=empty", data=b""), 400, "larger than 0"
    )
    assert (await api.post(f"{LIBPOD}/secrets/create?name=edge", data=b"x" * 511999)).code == 200
    await _error(
        await api.post(f"{LIBPOD}/secrets/create?name=bad-", data=b"x"), 400, "invalid secret name"
    )
    await _error(
        await api.post(f"{LIBPOD}/secrets/create?name=p&driver=pass", data=b"x"),
        400,
        "invalid driver",
    )
    await _error(
        await api.post(f'{LIBPOD}/secrets/create?name=p&driveropts={{"path":"/tmp"}}', data=b"x"),
        400,
        "invalid driver option",
    )
    await _error(
        await api.get(f"{LIBPOD}/secrets/nope/json"), 404, 'no secret with name or id "nope"'
    )
    await _error(await api.delete("http://d/v1.41/secrets/nope"), 404, "no such secret")
    await _error(
        await api.get(f"{LIBPOD}/secrets/json?filters=" + '{"driver":["file"]}'),
        400,
        'invalid filter "driver"',
    )
    await _error(await api.get("http://d/secrets?filters=notjson"), 400, "failed to parse filters")


@pytest_twisted.ensureDeferred
async def test_filters_name_id_label(api: StubTreq) -> None:
    a = await _create(api, "alpha", query='&labels={"k":"1"}')
    b = await _create(api, "beta")

    async def names(filters: dict[str, list[str]]) -> list[str]:
        query = json.dumps(filters)
        listed = await (await api.get(f"{LIBPOD}/secrets/json", params={"filters": query})).json()
        return sorted(s["Spec"]["Name"] for s in listed)

    assert await names({"name": ["^al"]}) == ["alpha"]
    assert await names({"id": [b[:5]]}) == ["beta"]
    assert await names({"label": ["k=1"]}) == ["alpha"]
    assert await names({"name": ["a"], "id": [a]}) == ["alpha"]
    assert await names({}) == ["alpha", "beta"]


@pytest_twisted.ensureDeferred
async def test_compat_docker_shape(api: StubTreq) -> None:
    """Docker's create body and answer (201 ``{"ID"}``), labels as given, no host path."""
    body = {
        "Name": "compat-one",
        "Data": base64.b64encode(SECRET).decode(),
        "Labels": {"env": "prod"},
    }
    response = await api.post("http://d/v1.41/secrets/create", data=json.dumps(body).encode())
    assert response.code == 201
    created = await response.json()
    assert list(created) == ["ID"]
    listed = await (await api.get("http://d/secrets")).json()
    assert len(listed) == 1
    item = listed[0]
    assert item["ID"] == created["ID"]
    assert item["Version"] == {"Index": 1}
    assert item["Spec"]["Labels"] == {"env": "prod"}
    assert item["Spec"]["Driver"] == {"Name": "file", "Options": {}}
    inspect = await (await api.get("http://d/v1.41/secrets/compat-one")).json()
    assert inspect == item
    text = json.dumps(inspect)
    assert "/" not in text.replace("\\/", "")  # no host path anywhere
    assert SECRET.decode() not in text
    again = await api.post("http://d/v1.41/secrets/create", data=json.dumps(body).encode())
    await _error(again, 409, "secret name in use")
    await _error(
        await api.post(
            "http://d/v1.41/secrets/create", data=json.dumps({"Name": "x", "Data": "%%"}).encode()
        ),
        400,
        "base64",
    )
    await _error(
        await api.post("http://d/v1.41/secrets/compat-one/update", data=b"{}"),
        501,
        "update is not supported",
    )
    assert (await api.delete("http://d/secrets/compat-one")).code == 204
    assert await (await api.get("http://d/secrets")).json() == []


@pytest_twisted.ensureDeferred
async def test_events_carry_no_data(api: StubTreq, engine: Engine) -> None:
    seen = []
    engine.events.subscribe(seen.append)
    secret_id = await _create(api, "evt")
    assert (await api.delete(f"{LIBPOD}/secrets/evt")).code == 204
    secret_events = [e for e in seen if e.type == "secret"]
    assert [(e.action, e.actor_id, dict(e.attributes)) for e in secret_events] == [
        ("create", secret_id, {"name": "evt"}),
        ("remove", secret_id, {"name": "evt"}),
    ]


@pytest_twisted.ensureDeferred
async def test_remove_all(api: StubTreq) -> None:
    await _create(api, "one")
    await _create(api, "two")
    assert (await api.delete(f"{LIBPOD}/secrets/ignored?all=true")).code == 204
    assert await (await api.get(f"{LIBPOD}/secrets/json")).json() == []


def test_specgen_secrets_decode_as_podman_sends_them() -> None:
    """``podman --remote run --secret a,target=t,uid=1,gid=2,mode=0400 --secret b,type=env,
    target=V``: ``secrets`` entries and ``secret_env``."""
    spec = decode_specgen(
        {
            "image": "busybox",
            "secrets": [
                {"Source": "a", "Target": "t", "UID": 1, "GID": 2, "Mode": 0o400},
                {"Source": "c"},
            ],
            "secret_env": {"V": "b"},
        }
    )
    assert spec.secrets == (SecretMount("a", "t", 1, 2, 0o400), SecretMount("c"))
    assert spec.env_secrets == {"V": "b"}
    assert mount_destination("t", "a") == "/run/secrets/t"
    assert mount_destination("", "a") == "/run/secrets/a"
    assert mount_destination("/etc/app.key", "a") == "/etc/app.key"
    for bad in ([{"Target": "x"}], [{"Source": "a", "Mode": -1}], "a"):
        try:
            decode_specgen({"image": "busybox", "secrets": bad})
        except BadRequest:
            continue
        raise AssertionError(f"accepted {bad!r}")
