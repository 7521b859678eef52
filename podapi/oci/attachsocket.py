"""Connecting to conmon's attach socket (``<bundle>/attach``, SOCK_SEQPACKET).

Each message conmon sends is one stream byte (2 = stdout, 3 = stderr) and a
payload; bytes we send are the container's stdin.  A bundle path can exceed
the 108 bytes of ``sun_path``; conmon binds through ``/proc/self/fd/<dir>/``
in that case, and so do we.
"""

import os
import socket

CONMON_STDOUT, CONMON_STDERR = 2, 3
SUN_PATH_MAX = 107


def connect(bundle: str) -> socket.socket:
    """A connected socket to the container's attach socket (raises OSError if absent)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        path = os.path.join(bundle, "attach")
        if len(path.encode()) <= SUN_PATH_MAX:
            sock.connect(path)
        else:
            directory = os.open(bundle, os.O_PATH | os.O_CLOEXEC)
            try:
                sock.connect(f"/proc/self/fd/{directory}/attach")
            finally:
                os.close(directory)
    except BaseException:
        sock.close()
        raise
    return sock
