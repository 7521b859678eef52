"""contrib/systemd: the units systemd accepts, and a command line podapi accepts."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from podapi.tap import Options
from tests.support import TWISTD

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"


def service_text() -> str:
    return (UNITS / "podapi.service.in").read_text().replace("@TWISTD@", TWISTD)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify` warns about unknown values and missing programs."""
    (tmp_path / "podapi.service").write_text(service_text())
    shutil.copy(UNITS / "podapi.socket", tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "verify", tmp_path / "podapi.socket", tmp_path / "podapi.service"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")


def test_the_service_runs_podapi_as_podman_service_runs_podman() -> None:
    """Type=notify readiness, the idle timeout, and no URI: the socket systemd passes."""
    text = service_text()
    assert re.search(r"^Type=notify$", text, re.M)
    assert re.search(r"^KillMode=process$", text, re.M)  # containers outlive the service
    timeout = re.search(r"^Environment=PODAPI_TIMEOUT=(\d+)$", text, re.M)
    assert timeout is not None
    exec_start = re.search(r"^ExecStart=(.*)$", text, re.M)
    assert exec_start is not None
    argv = shlex.split(exec_start[1].replace("${PODAPI_TIMEOUT}", timeout[1]))
    assert argv[0] == TWISTD
    options = Options()
    options.parseOptions(argv[argv.index("podapi") + 1 :])
    assert options.config().timeout == float(timeout[1])
    assert options["uri"] is None
    socket_text = (UNITS / "podapi.socket").read_text()
    assert re.search(r"^ListenStream=%t/podman/podman.sock$", socket_text, re.M)
