"""Detach keys: the key sequence that leaves an attach or exec session running.

The format is Docker's (``ctrl-p,ctrl-q`` is the default): keys separated by
commas, each a single character or ``ctrl-`` followed by a letter or one of
``@[\\]^_``.  An empty string turns detaching off, as in Podman.
"""

from podapi.errors import InvalidArgument

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL_SYMBOLS = "@[\\]^_"


def parse_detach_keys(text: str) -> bytes:
    """The bytes ``text`` stands for (400 for a key Docker would not accept)."""
    if text == "":
        return b""
    keys = bytearray()
    for key in text.split(","):
        if len(key) == 1 and key.isascii():  # Docker's keys are bytes: ASCII only
            keys.append(ord(key))
            continue
        name = key.lower().removeprefix("ctrl-")
        if key.lower().startswith("ctrl-") and len(name) == 1:
            if "a" <= name <= "z":
                keys.append(ord(name) - ord("a") + 1)
                continue
            if name in _CTRL_SYMBOLS:
                keys.append(_CTRL_SYMBOLS.index(name) + (0 if name == "@" else 26))
                continue
        raise InvalidArgument(f"invalid detach keys {text!r}: unknown key {key!r}")
    return bytes(keys)


class DetachDetector:
    """Watches input for the detach sequence; everything else passes through.

    Bytes that might start the sequence are held back until the sequence
    either completes (detach: they are dropped) or breaks (they are passed on).
    """

    def __init__(self, keys: bytes) -> None:
        self._keys = keys
        self._matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """``(bytes to forward, detached)``; input after a detach is dropped."""
        if not self._keys:
            return data, False
        out = bytearray()
        for byte in data:
            if byte == self._keys[self._matched]:
                self._matched += 1
                if self._matched == len(self._keys):
                    self._matched = 0
                    return bytes(out), True
                continue
            out += self._keys[: self._matched]
            self._matched = 0
            if byte == self._keys[0]:
                self._matched = 1
                if len(self._keys) == 1:
                    self._matched = 0
                    return bytes(out), True
            else:
                out.append(byte)
        return bytes(out), False
