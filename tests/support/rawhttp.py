"""HTTP/1.1 over a bare socket: requests no client library would send, and clients that read
slowly, stop reading, or send a byte at a time."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

from tests.support.clock import Stopwatch


def host_port(url: str) -> tuple[str, int]:
    """(host, port) of a base URL."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def request_bytes(
    method: str, path: str, body: bytes | dict[str, object] | None = None, **headers: str
) -> bytes:
    """A well-formed request; headers given as keyword arguments (underscores become dashes)."""
    raw = orjson.dumps(body) if isinstance(body, dict) else (body or b"")
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(raw)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


async def connect(
    url: str, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection; `rcvbuf` sets SO_RCVBUF before connecting (a small client window)."""
    host, port = host_port(url)
    if rcvbuf is None:
        return await asyncio.open_connection(host, port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    return await asyncio.open_connection(sock=sock, limit=rcvbuf // 2)


@dataclass
class RawAnswer:
    """A parsed response: status, lower-cased headers, body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> object:
        """The body as JSON."""
        return orjson.loads(self.body)


async def read_answer(reader: asyncio.StreamReader, timeout: float = 5.0) -> RawAnswer:
    """One response with a Content-Length body (errors are never chunked)."""
    async with asyncio.timeout(timeout):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        answer = RawAnswer(status=int(lines[0].split()[1]))
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                answer.headers[name.strip().lower()] = value.strip()
        length = answer.headers.get("content-length")
        if length is not None:
            answer.body = await reader.readexactly(int(length))
        return answer


async def exchange(url: str, raw: bytes, timeout: float = 5.0) -> RawAnswer:
    """Send raw bytes on a new connection and read one answer."""
    reader, writer = await connect(url)
    try:
        writer.write(raw)
        await writer.drain()
        return await read_answer(reader, timeout)
    finally:
        writer.close()


async def closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the server closes the connection (reading and dropping what it sends), a
    figure to print; raises TimeoutError if it is still open after `limit` (a bound on the
    test's own run time)."""
    took = Stopwatch()
    async with asyncio.timeout(limit):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
    return took.elapsed()
