"""A small asyncio HTTP/1.1 client over UNIX sockets for benchmarks.

It keeps connections alive and parses just enough (status, Content-Length,
chunked bodies) to be much faster than the servers it measures, so the
numbers describe the server, not the client.
"""

import asyncio
import time

from attrs import field, frozen

from bench.timing import Laps, percentile


class Connection:
    """One keep-alive connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, path: str) -> "Connection":
        reader, writer = await asyncio.open_unix_connection(path, limit=1 << 22)
        return cls(reader, writer)

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: d\r\n"
        if body or method in ("POST", "PUT"):
            head += f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        return await self.read_response(method)

    async def read_response(self, method: str) -> tuple[int, bytes]:
        """Read one response (status and whole body)."""
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304):
            return status, b""
        if "content-length" in headers:
            return status, await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding") == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    return status, b"".join(chunks)
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
        return status, await self.reader.read()

    def close(self) -> None:
        self.writer.close()


async def one_request(path: str, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
    """A single request on a fresh connection."""
    conn = await Connection.open(path)
    try:
        return await conn.request(method, target, body)
    finally:
        conn.close()


@frozen
class Latency(Laps):
    """Per-request latencies in milliseconds, the time they took together and the
    rate that implies."""

    elapsed: float = field(kw_only=True)

    @property
    def p99(self) -> float:
        return percentile(self.totals, 0.99)

    @property
    def rate(self) -> float:
        return len(self.totals) / self.elapsed


async def sequential(
    path: str, target: str, count: int, seconds: float = 10, minimum: int = 20
) -> Latency:
    """Up to ``count`` requests one after another on one connection.

    Stops early after ``seconds`` once ``minimum`` samples exist (podman's
    ``/info`` takes a quarter of a second per call).
    """
    conn = await Connection.open(path)
    try:
        await conn.request("GET", target)  # warm-up
        samples: list[float] = []
        start = time.perf_counter()
        for _ in range(count):
            if len(samples) >= minimum and time.perf_counter() - start > seconds:
                break
            t0 = time.perf_counter()
            status, _ = await conn.request("GET", target)
            samples.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"{target}: HTTP {status}")
        return Latency(tuple(samples), elapsed=time.perf_counter() - start)
    finally:
        conn.close()


async def concurrent(path: str, target: str, clients: int, seconds: float) -> float:
    """Requests per second with ``clients`` connections busy for ``seconds``."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        conn = await Connection.open(path)
        try:
            while time.perf_counter() < deadline:
                status, _ = await conn.request("GET", target)
                if status != 200:
                    raise RuntimeError(f"{target}: HTTP {status}")
                done += 1
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return done / (time.perf_counter() - start)
