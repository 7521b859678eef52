"""The layers of docs/architecture.rst, enforced: nothing imports upward, http never imports oci.

plugin -> service (tap, service, cleanup...) -> http -> engine -> storage -> oci, with the
base modules (errors, logs, threads, config) usable by every layer and importing none of them.
Every ``import`` in a module counts, those inside functions too (a lazy import is still a
dependency).

How it was checked: adding ``from podapi.http import app`` to ``podapi/engine/layout.py``
and ``from podapi.oci import host`` to ``podapi/http/routing.py`` made
``test_the_tree_keeps_its_layers`` fail naming both lines; ``test_an_upward_import_is_reported``
keeps that proof in the suite on a tree made for it.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Top to bottom; a module may import its own layer and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("plugin", ("twisted.plugins",)),
    (
        "service",
        (
            "podapi.tap",
            "podapi.service",
            "podapi.idle",
            "podapi.listen",
            "podapi.access",
            "podapi.notify",
            "podapi.cleanup",
            "podapi.cleanup_run",
            "podapi.client",
        ),
    ),
    ("http", ("podapi.http",)),
    ("engine", ("podapi.engine",)),
    ("storage", ("podapi.storage",)),
    ("oci", ("podapi.oci",)),
    ("base", ("podapi.errors", "podapi.logs", "podapi.threads", "podapi.config", "podapi")),
]

#: Pairs that are below one another and still may not meet: HTTP handlers reach the
#: runtime only through the engine.
FORBIDDEN = {("http", "oci")}

#: Test fakes ship in the package for the tests; no layer may use them.
TESTING = "podapi.testing"


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of ``module`` (longest prefix wins), or None if not ours."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def module_name(path: Path, root: Path) -> str:
    """``podapi/http/app.py`` -> ``podapi.http.app``; packages are their ``__init__``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports, with its line (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # ``from podapi.oci import host`` imports podapi.oci.host when that is a module.
                yield node.lineno, f"{base}.{alias.name}" if base else alias.name


def violations(root: Path) -> list[str]:
    """Every import in ``root``'s podapi and plugin trees that breaks a layer rule."""
    found = []
    files = sorted((root / "podapi").rglob("*.py")) + sorted((root / "twisted").rglob("*.py"))
    for path in files:
        module = module_name(path, root)
        if module.startswith(TESTING):
            continue
        own = layer_of(module)
        assert own is not None, module
        own_name = LAYERS[own][0]
        for line, target in imports_of(path, module):
            where = f"{path.relative_to(root)}:{line}: {module} imports {target}"
            if target.startswith(TESTING):
                found.append(f"{where} (test fakes)")
                continue
            theirs = layer_of(target)
            if theirs is None:
                continue
            their_name = LAYERS[theirs][0]
            if theirs < own:
                found.append(f"{where} ({own_name} -> {their_name}: upward)")
            elif (own_name, their_name) in FORBIDDEN:
                found.append(f"{where} ({own_name} -> {their_name}: forbidden)")
    return found


def test_the_tree_keeps_its_layers() -> None:
    """No module of podapi or the dropin imports a layer above its own, nor http -> oci."""
    assert violations(ROOT) == []


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_an_upward_import_is_reported(tmp_path: Path) -> None:
    """The checker itself: upward, forbidden, lazy and relative imports are all caught."""
    _write(tmp_path, "podapi/__init__.py", "")
    _write(tmp_path, "podapi/errors.py", "")
    _write(tmp_path, "podapi/engine/__init__.py", "")
    _write(tmp_path, "podapi/engine/layout.py", "from podapi.http import app\n")
    _write(
        tmp_path,
        "podapi/engine/lazy.py",
        "def f():\n    from ..http.app import build\n    return build\n",
    )
    _write(tmp_path, "podapi/http/__init__.py", "")
    _write(
        tmp_path, "podapi/http/app.py", "from podapi.engine import layout\nimport podapi.errors\n"
    )
    _write(tmp_path, "podapi/http/routing.py", "from podapi.oci import host\n")
    _write(tmp_path, "podapi/oci/__init__.py", "")
    _write(tmp_path, "podapi/oci/host.py", "from podapi.testing import fakes\n")
    found = violations(tmp_path)
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in found] == [
        "podapi/engine/layout.py:1",
        "podapi/engine/lazy.py:2",
        "podapi/http/routing.py:1",
        "podapi/oci/host.py:1",
    ]
    assert "upward" in found[0]
    assert "forbidden" in found[2]
    assert "test fakes" in found[3]


def test_no_bare_logger() -> None:
    """Every podapi logger honours --log-level: made by podapi.logs.get_logger, never Logger()."""
    bare = []
    for path in sorted((ROOT / "podapi").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Logger"
                and path.name != "logs.py"
            ):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == []


def test_engine_modules_hold_one_concern() -> None:
    """No engine module grows past 600 lines (past that it usually holds two concerns)."""
    large = [
        f"{path.relative_to(ROOT)}: {count} lines"
        for path in sorted((ROOT / "podapi" / "engine").rglob("*.py"))
        if (count := len(path.read_text().splitlines())) > 600
    ]
    assert large == []
