"""Bodies over 32 MiB: refused by Content-Length before reading, or as a chunked body passes it."""

from __future__ import annotations

import asyncio
import gzip
from urllib.parse import urlsplit

import orjson

LIMIT = 32 * 1024 * 1024
MESSAGE = "Request body exceeds 32 MiB. Reduce the size of your request."


async def _open(gateway):
    parts = urlsplit(gateway.url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
    return status, headers, body


async def test_content_length_over_limit_is_refused_unread(gateway, fake) -> None:
    tenant = await gateway.tenant()
    reader, writer = await _open(gateway)
    writer.write(
        (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {tenant.key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {33 * 1024 * 1024}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    # Not one body byte was sent: an answer now proves the body was never read.
    status, headers, body = await _read_response(reader)
    writer.close()
    assert status == 413
    assert orjson.loads(body)["error"]["message"] == MESSAGE
    assert headers.get("connection", "").lower() == "close"
    assert fake.requests == []


async def test_limit_is_checked_before_credentials(gateway) -> None:
    reader, writer = await _open(gateway)
    writer.write(
        (
            f"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: {LIMIT + 1}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status, _, body = await _read_response(reader)
    writer.close()
    assert status == 413
    assert orjson.loads(body) == {
        "type": "error",
        "error": {"type": "request_too_large", "message": MESSAGE},
    }


async def test_chunked_body_is_cut_as_it_passes_the_limit(gateway, fake) -> None:
    tenant = await gateway.tenant()
    reader, writer = await _open(gateway)
    writer.write(
        (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {tenant.key}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )
    chunk = b"x" * (1024 * 1024)
    sent = 0
    answer = None
    try:
        while sent < 40 * 1024 * 1024:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            sent += len(chunk)
            if sent > LIMIT:
                answer = await _read_response(reader)
                break
    except ConnectionError:
        answer = await _read_response(reader)
    writer.close()
    assert answer is not None
    status, _, body = answer
    assert status == 413
    assert orjson.loads(body)["error"]["message"] == MESSAGE
    assert sent <= LIMIT + len(chunk)  # refused right after crossing, not at the end
    assert fake.requests == []


async def test_compressed_body_counts_decompressed_bytes(gateway) -> None:
    tenant = await gateway.tenant()
    bomb = gzip.compress(b"{" + b" " * (LIMIT + 10) + b"}")  # ~33 KiB on the wire
    async with gateway.http.post(
        f"{gateway.url}/v1/chat/completions",
        data=bomb,
        headers={
            "Authorization": f"Bearer {tenant.key}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    ) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["message"] == MESSAGE
