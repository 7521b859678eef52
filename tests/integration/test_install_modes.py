"""``twistd podapi`` after every way of installing podapi, each in a throwaway virtualenv.

The virtualenv gets podapi's dependencies from this test run's environment (a
path line in a .pth: that site's own .pth files, among them this checkout's
editable install, are not processed) and podapi itself from a copy of the
source tree, built without isolation and without dependencies: offline and a
few seconds a mode.
"""

import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ServerProcess

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).resolve().parents[2]
#: What the ``twistd`` console script runs (Twisted itself comes from the .pth path).
TWISTD = "from twisted.scripts.twistd import run; run()"
#: Build leftovers and local state that a fresh checkout does not have.
IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "dropin.cache", ".*_cache"
)


class Venv:
    """A bare virtualenv whose only podapi is the one installed into it."""

    def __init__(self, base: Path) -> None:
        self.dir = base / "venv"
        self.cwd = base / "elsewhere"  # not the source tree: '' on sys.path must not find it
        self.cwd.mkdir(parents=True)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", self.dir], check=True)
        self.python = self.dir / "bin" / "python"
        purelib = self.run("import sysconfig; print(sysconfig.get_path('purelib'))").strip()
        Path(purelib, "podapi-test-deps.pth").write_text(site.getsitepackages()[0] + "\n")

    def run(self, code: str, *args: str) -> str:
        done = subprocess.run(
            [self.python, "-c", code, *args],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def pip(self, *args: str) -> None:
        argv = [sys.executable, "-m", "pip", "--python", str(self.python), *args]
        done = subprocess.run(argv, cwd=self.cwd, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


class VenvServer(ServerProcess):
    """``twistd -n podapi`` run by the throwaway virtualenv's Python."""

    def __init__(self, base: Path, venv: Venv) -> None:
        super().__init__(base)
        self.venv = venv

    def argv(self) -> list[str]:
        return [str(self.venv.python), "-c", TWISTD, *super().argv()[1:]]


def install(mode: str, venv: Venv, base: Path) -> Path:
    """Install a copy of the tree as ``mode``; return where podapi should import from."""
    source = base / "src"
    shutil.copytree(SOURCE, source, ignore=IGNORE)
    quiet = ("--no-deps", "--no-build-isolation", "--no-index", "-q")
    if mode == "wheel":
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", *quiet, "-w", base / "dist", source],
            check=True,
            capture_output=True,
        )
        (wheel,) = (base / "dist").glob("podapi-*.whl")
        venv.pip("install", *quiet, str(wheel))
    elif mode == "install":
        venv.pip("install", *quiet, str(source))
    elif mode == "editable":  # PEP 660, setuptools' default (lenient) mode
        venv.pip("install", *quiet, "-e", str(source))
    else:
        venv.pip("install", *quiet, "-e", str(source), "--config-settings", "editable_mode=compat")
    return source / "podapi" if mode.startswith("editable") else venv.dir


@pytest.mark.parametrize("mode", ["install", "wheel", "editable", "editable-compat"])
def test_twistd_podapi_after_install(mode: str, tmp_path: Path) -> None:
    venv = Venv(tmp_path)
    assert "podapi" not in venv.run(TWISTD, "--help")  # the venv sees no podapi of ours yet
    home = install(mode, venv, tmp_path)

    assert Path(venv.run("import podapi; print(podapi.__file__)").strip()).is_relative_to(home)
    listed = venv.run(TWISTD, "--help")
    assert "podapi" in listed and "Podman-compatible API service" in listed

    server = VenvServer(tmp_path / "server", venv).start()
    try:
        ping = server.request("GET", "/_ping")
        assert (ping.status, ping.body) == (200, b"OK")
    finally:
        server.stop()
