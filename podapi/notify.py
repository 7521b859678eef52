"""systemd's readiness protocol (``sd_notify``), as ``podman system service`` speaks it.

When ``NOTIFY_SOCKET`` is set, the service sends ``MAINPID=<pid>`` and
``READY=1`` once it listens, then unsets the variable so nothing it starts
inherits it.  Tests use the same signal to know the server is up.
"""

import os
import socket
from collections.abc import MutableMapping


def notify_ready(environ: MutableMapping[str, str] | None = None) -> bool:
    """Send READY=1 to ``$NOTIFY_SOCKET``; return whether a message was sent."""
    environ = os.environ if environ is None else environ
    address = environ.pop("NOTIFY_SOCKET", None)
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(f"MAINPID={os.getpid()}\nREADY=1\n".encode(), address)
    return True
