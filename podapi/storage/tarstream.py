"""Reading a tar stream once, front to back, in big chunks: image layers and archives.

tarfile's stream mode (``r|``) hands member data out through 10 KiB records,
copying each byte two or three times in Python; a 500 MB layer spent more time
there than in hashing or on the disk.  Here the source is a function returning
the next chunk (1 MiB reads), headers are still parsed by ``tarfile.TarInfo``
itself (ustar, GNU long names, PAX, global headers), and a member's data is
handed out as ``memoryview`` slices of those chunks: copying a file is one
``os.write`` per chunk, and a hashing tap (:func:`tapped`) sees each chunk once.

Bad headers are errors wherever they are, as in Go's archive/tar (Docker):
tarfile ends an archive silently at a garbled header after the first.  A clean
end (a zero block, or no more bytes between members) ends it; an empty stream
is an empty archive.

Blocking: call from a thread.
"""

import tarfile
from collections.abc import Callable, Iterator
from typing import Any

#: The next piece of a stream; ``b""`` at its end.
Chunks = Callable[[], bytes | memoryview]
CHUNK = 1024 * 1024
#: Bytes :func:`looks_like_tar` needs.
HEADER_SIZE = tarfile.BLOCKSIZE

# Module-level names of tarfile since Python 3.2, missing from typeshed.
_T: Any = tarfile
_END = (_T.EOFHeaderError, _T.EmptyHeaderError)
_BAD = (_T.InvalidHeaderError, _T.TruncatedHeaderError, _T.SubsequentHeaderError)


def file_chunks(stream: Any, size: int = CHUNK) -> Chunks:
    """The chunks of a file object, ``size`` bytes per read."""
    return lambda: stream.read(size)


def bytes_chunks(data: bytes) -> Chunks:
    """``data`` as a chunk source (one chunk, then the end)."""
    pending = [data]
    return lambda: pending.pop() if pending else b""


def tapped(source: Chunks, sink: Callable[[bytes | memoryview], object]) -> Chunks:
    """``source``, with every chunk also given to ``sink`` (a hash's ``update``, a writer)."""

    def read() -> bytes | memoryview:
        chunk = source()
        if chunk:
            sink(chunk)
        return chunk

    return read


def peek(source: Chunks, size: int) -> tuple[bytes, Chunks]:
    """The first ``size`` bytes of ``source`` (fewer at its end), and the whole stream again."""
    first: list[bytes | memoryview] = []
    have = 0
    while have < size and (chunk := source()):
        first.append(chunk)
        have += len(chunk)
    head = b"".join(first)[:size]

    def read() -> bytes | memoryview:
        return first.pop(0) if first else source()

    return head, read


def looks_like_tar(head: bytes) -> bool:
    """Whether a stream starting with ``head`` is a tar: a valid first header or a zero block."""
    if len(head) < HEADER_SIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(head[:HEADER_SIZE], tarfile.ENCODING, "surrogateescape")
    except _T.EOFHeaderError:
        return True  # an empty archive: end-of-archive blocks only
    except tarfile.HeaderError:
        return False
    return True


class TarReader:
    """A tar stream read once, front to back.

    :meth:`next` gives the next member; :meth:`data` its content, as slices of
    the chunks read (valid until the next read).  What a caller leaves unread is
    skipped.  The attributes ``fileobj``, ``offset``, ``encoding``, ``errors``
    and ``pax_headers`` are what ``TarInfo.fromtarfile`` expects of a TarFile.

    :param source: the stream's chunks.
    :param tarinfo: the ``TarInfo`` class to parse headers with.
    """

    def __init__(self, source: Chunks, tarinfo: type[tarfile.TarInfo] = tarfile.TarInfo) -> None:
        self._source = source
        self._tarinfo = tarinfo
        self._chunk = memoryview(b"")
        self._pos = 0
        self._base = 0
        #: Bytes read from the source so far.
        self.count = 0
        self.fileobj = self
        #: Where the next header starts (``TarInfo`` sets it past each member's data).
        self.offset = 0
        self.encoding = tarfile.ENCODING
        self.errors = "surrogateescape"
        self.pax_headers: dict[str, str] = {}

    def _fill(self) -> bool:
        chunk = self._source()
        if not chunk:
            return False
        self._base += len(self._chunk)
        self._chunk = memoryview(chunk).cast("B")
        self._pos = 0
        self.count += len(chunk)
        return True

    def tell(self) -> int:
        """The stream position."""
        return self._base + self._pos

    def _pieces(self, size: int, *, exact: bool) -> Iterator[memoryview]:
        while size > 0:
            if self._pos >= len(self._chunk) and not self._fill():
                if exact:
                    raise tarfile.ReadError("unexpected end of data")
                return
            piece = self._chunk[self._pos : self._pos + size]
            self._pos += len(piece)
            size -= len(piece)
            yield piece

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end): header reads."""
        return b"".join(self._pieces(size, exact=False))

    def next(self) -> tarfile.TarInfo | None:
        """The next member's header, or None at the end of the archive.

        :raises tarfile.ReadError: a bad or truncated header, or a stream that
            ends inside a member.
        """
        for _ in self._pieces(self.offset - self.tell(), exact=True):
            pass  # data the caller did not read, and the padding after it
        try:
            return self._tarinfo.fromtarfile(self)  # type: ignore[arg-type]
        except _END:
            return None
        except _BAD as e:
            raise tarfile.ReadError(f"bad header at offset {self.offset}: {e}") from None

    def data(self, member: tarfile.TarInfo) -> Iterator[memoryview]:
        """The content of ``member``, just returned by :meth:`next`, in slices.

        :raises tarfile.ReadError: the stream ends inside it, or it is a GNU
            sparse file (its data is a map, not the content).
        """
        if member.issparse():
            raise tarfile.ReadError(f"{member.name!r} is a sparse file; these are not supported")
        return self._pieces(member.size, exact=True)

    def drain(self) -> None:
        """Read the rest of the stream (end-of-archive blocks, padding), for taps to see."""
        while self._fill():
            pass
