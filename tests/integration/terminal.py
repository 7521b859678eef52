"""Running a client in a pseudo-terminal, as a person at a keyboard would (``docker run -it``)."""

import fcntl
import os
import select
import struct
import subprocess
import termios
import time
from collections.abc import Sequence


class Terminal:
    """A process whose stdin, stdout and stderr are a pty we read and type into.

    :param size: the terminal's ``(rows, columns)``.
    """

    def __init__(
        self, argv: Sequence[str], env: dict[str, str], size: tuple[int, int] = (40, 100)
    ) -> None:
        self._master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
        try:
            self.proc = subprocess.Popen(
                list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
            )
        finally:
            os.close(slave)
        self.output = b""

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the terminal is closed."""
        readable, _, _ = select.select([self._master], [], [], timeout)
        if not readable:
            return True
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: every slave end is closed
            return False
        self.output += data
        return bool(data)

    def expect(self, text: bytes, timeout: float = 30) -> None:
        """Wait until ``text`` has been printed (AssertionError with the output if not)."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(remaining, 0.5)):
                if text in self.output:
                    return
                raise AssertionError(f"{text!r} not printed; got {self.output!r}")

    def send(self, keys: bytes) -> None:
        """Type ``keys``."""
        os.write(self._master, keys)

    def wait(self, timeout: float = 30) -> int:
        """Read until the process exits; its exit status."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            if not self._read(0.2):
                break
        status = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        # What it printed just before exiting may still wait in the terminal: drain it.
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self._master], [], [], 0.05)
            if not readable or not self._read(0):
                break
        return status

    def close(self) -> None:
        """Kill the process if it still runs and close the terminal."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._master)
