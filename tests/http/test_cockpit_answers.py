"""Answers Cockpit's Podman page reads, as Podman gives them (no sockets)."""

import attrs
import pytest_twisted
from treq.testing import StubTreq

from podapi.engine.engine import Engine
from podapi.storage.registries import RegistriesConfig, Registry


@pytest_twisted.ensureDeferred
async def test_info_registries_is_empty_without_search_registries(
    api: StubTreq, engine: Engine
) -> None:
    """Podman (libpod/info.go) adds "search" only when there are search registries; the
    page searches docker.io and quay.io itself when it is absent, the bare term otherwise."""
    assert engine.system.facts is not None
    engine.system.facts = attrs.evolve(engine.system.facts, registries=RegistriesConfig())
    response = await api.get("http://d/v1.12/libpod/info")
    assert (await response.json())["registries"] == {}

    mirror = Registry(prefix="docker.io", location="mirror.example")
    configured = RegistriesConfig(unqualified_search=("quay.io",), registries=(mirror,))
    engine.system.facts = attrs.evolve(engine.system.facts, registries=configured)
    registries = await (await api.get("http://d/v1.12/libpod/info")).json()
    assert registries["registries"]["search"] == ["quay.io"]
    assert registries["registries"]["docker.io"]["Location"] == "mirror.example"
