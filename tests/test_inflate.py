"""Compressed request bodies: inflated by the gateway only when it reads them, never past the
body limit; a refused request's body is never inflated, whatever it would grow to."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Any

import orjson
import pytest

from edge.inflate import Inflater, TooLarge
from tests.support.gateway import Live
from tests.support.rawhttp import connect, read_answer

LIMIT = 32 * 1024 * 1024


class Counting:
    """Every zlib decompressor made while installed, and the bytes they produced."""

    def __init__(self) -> None:
        self.made = 0
        self.produced = 0

    def wrap(self, real: Any) -> Any:
        counter = self

        class Spy:
            def __init__(self, *args: Any) -> None:
                counter.made += 1
                self._inner = real(*args)

            def decompress(self, data: bytes, max_length: int = 0) -> bytes:
                out = self._inner.decompress(data, max_length)
                counter.produced += len(out)
                return out

            def __getattr__(self, name: str) -> Any:
                return getattr(self._inner, name)

        return Spy


@pytest.fixture
def inflations(monkeypatch: pytest.MonkeyPatch) -> Counting:
    counting = Counting()
    monkeypatch.setattr(zlib, "decompressobj", counting.wrap(zlib.decompressobj))
    return counting


def _bomb(inflated: int) -> bytes:
    """A gzip body that inflates to `inflated` bytes of spaces inside a JSON object."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b"{")]
    block = b" " * (1 << 20)
    for _ in range(inflated // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.compress(b"}"))
    parts.append(compressor.flush())
    return b"".join(parts)


async def _send(live: Live, body: bytes, **headers: str) -> Any:
    reader, writer = await connect(live.url)
    try:
        head = ["POST /v1/chat/completions HTTP/1.1", "Host: localhost"]
        head += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return await read_answer(reader, timeout=30)  # bounds the test's own run time
    finally:
        writer.transport.abort()


async def test_an_unauthenticated_gzip_bomb_is_never_inflated(
    gateway: Live, inflations: Counting
) -> None:
    bomb = _bomb(1 << 28)  # ~256 KiB on the wire, 256 MiB inflated
    answers = await asyncio.gather(
        *(_send(gateway, bomb, Content_Encoding="gzip") for _ in range(4))
    )
    assert [a.status for a in answers] == [401] * 4
    assert inflations.produced == 0 and inflations.made == 0


async def test_an_admitted_gzip_body_is_inflated_and_served(
    gateway: Live, inflations: Counting
) -> None:
    tenant = await gateway.tenant()
    body = {"model": "local/echo", "messages": [{"role": "user", "content": "squeezed"}]}
    answer = await _send(
        gateway,
        gzip.compress(orjson.dumps(body)),
        Content_Encoding="gzip",
        Authorization=f"Bearer {tenant.key}",
    )
    assert answer.status == 200, answer.body
    assert "Echo: squeezed" in answer.body.decode()
    assert 0 < inflations.produced < 1024


async def test_a_bomb_from_a_valid_key_stops_at_the_limit(
    gateway: Live, inflations: Counting
) -> None:
    tenant = await gateway.tenant()
    answer = await _send(
        gateway,
        _bomb(LIMIT + (1 << 20)),
        Content_Encoding="gzip",
        Authorization=f"Bearer {tenant.key}",
    )
    assert answer.status == 413
    assert inflations.produced <= LIMIT + 1


async def test_an_unknown_encoding_is_refused(gateway: Live) -> None:
    tenant = await gateway.tenant()
    answer = await _send(
        gateway, b"\x00" * 10, Content_Encoding="br", Authorization=f"Bearer {tenant.key}"
    )
    assert answer.status == 415
    assert orjson.loads(answer.body)["error"]["code"] == "unsupported_content_encoding"


def test_the_inflater_never_passes_the_limit() -> None:
    payload = b"x" * 5000
    for encoded, encoding in (
        (gzip.compress(payload), "gzip"),
        (zlib.compress(payload), "deflate"),
        (zlib.compress(payload)[2:-4], "deflate"),  # raw deflate, as some clients send it
        (gzip.compress(payload[:2500]) + gzip.compress(payload[2500:]), "gzip"),  # two members
    ):
        inflater = Inflater(encoding, 5000)
        out = b"".join(inflater.feed(encoded[i : i + 7]) for i in range(0, len(encoded), 7))
        inflater.finish()
        assert out == payload, encoding
        with pytest.raises(TooLarge):
            Inflater(encoding, 4999).feed(encoded)
