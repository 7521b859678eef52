"""registries.conf parsing (v2 and v1) and prefix matching."""

from pathlib import Path

import pytest

from podapi.storage import registries
from podapi.storage.registries import load

V2 = """
unqualified-search-registries = ["registry.example.org", "docker.io"]
short-name-mode = "permissive"

[[registry]]
prefix = "example.com/foo"
location = "mirror.local:5000/foo"
insecure = true
[[registry.mirror]]
location = "cache.local/foo"

[[registry]]
location = "blocked.example"
blocked = true

[[registry]]
prefix = "*.wild.example"
location = "x"

[aliases]
"busybox" = "docker.io/library/busybox"
"""


def test_v2_file(tmp_path: Path) -> None:
    conf = tmp_path / "registries.conf"
    conf.write_text(V2)
    config = load(str(conf))
    assert config.unqualified_search == ("registry.example.org", "docker.io")
    assert config.short_name_mode == "permissive"
    assert config.aliases == {"busybox": "docker.io/library/busybox"}
    foo = config.find("example.com/foo/bar:1")
    assert foo is not None
    assert foo.insecure
    assert foo.rewrite("example.com/foo/bar:1") == "mirror.local:5000/foo/bar:1"
    assert foo.mirrors[0].location == "cache.local/foo"
    assert config.find("example.com/foobar") is None
    blocked = config.find("blocked.example/x")
    assert blocked is not None and blocked.blocked
    assert config.find("a.wild.example/img") is not None


def test_environment_variable_names_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "r.conf"
    conf.write_text('unqualified-search-registries = ["127.0.0.1:5000"]\n')
    config = load(env={"CONTAINERS_REGISTRIES_CONF": str(conf)})
    assert config.unqualified_search == ("127.0.0.1:5000",)
    assert config.sources == (str(conf),)


def test_dropins_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files in registries.conf.d are read after the main file and win."""
    main = tmp_path / "registries.conf"
    main.write_text('unqualified-search-registries = ["a"]\n')
    (tmp_path / "registries.conf.d").mkdir()
    (tmp_path / "registries.conf.d" / "10.conf").write_text(
        'unqualified-search-registries = ["b"]\n'
    )
    monkeypatch.setattr(registries, "DEFAULT_PATH", str(main))
    assert registries.load(env={}).unqualified_search == ("b",)


def test_v1_format(tmp_path: Path) -> None:
    conf = tmp_path / "registries.conf"
    conf.write_text(
        "[registries.search]\nregistries = ['quay.io']\n"
        "[registries.insecure]\nregistries = ['local:5000']\n"
        "[registries.block]\nregistries = ['evil.io']\n"
    )
    config = load(str(conf))
    assert config.unqualified_search == ("quay.io",)
    local = config.find("local:5000/x")
    assert local is not None and local.insecure
    evil = config.find("evil.io/x")
    assert evil is not None and evil.blocked


def test_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    conf = tmp_path / "registries.conf"
    conf.write_text("this is = = not toml")
    with pytest.raises(ValueError, match=r"registries\.conf"):
        load(str(conf))


def test_invalid_short_name_mode(tmp_path: Path) -> None:
    conf = tmp_path / "registries.conf"
    conf.write_text('short-name-mode = "sometimes"\n')
    with pytest.raises(ValueError, match="short-name-mode"):
        load(str(conf))
