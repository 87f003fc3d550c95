"""Request bodies sent with a Content-Encoding, inflated by the gateway itself and never past the
body limit: aiohttp's own decompression is off (`auto_decompress=False`), because it inflated
everything it read, a body nobody would read included (a 1 MiB gzip bomb answered 401 still cost
seconds of CPU while aiohttp read the rest to keep the connection). Each step inflates at most
what is left of the limit, so one chunk can never cost more than the limit's worth of work."""

from __future__ import annotations

import zlib

from edge.errors import GatewayError

GZIP = 16 + zlib.MAX_WBITS
ZLIB = zlib.MAX_WBITS
RAW = -zlib.MAX_WBITS
ENCODINGS = {"gzip": GZIP, "x-gzip": GZIP, "deflate": ZLIB}
UNDECODABLE = "Request body could not be decoded."


class TooLarge(Exception):
    """The inflated body passed the limit."""


def unsupported(encoding: str) -> GatewayError:
    """415 for a Content-Encoding the gateway does not inflate."""
    return GatewayError(
        415,
        f"Content-Encoding '{encoding[:40]}' is not supported; send gzip, deflate or none.",
        code="unsupported_content_encoding",
        close=True,
    )


def undecodable() -> GatewayError:
    """400 for a body its Content-Encoding does not describe."""
    return GatewayError(400, UNDECODABLE, code="invalid_body", close=True)


class Inflater:
    """Inflates one body chunk by chunk; raises TooLarge once the output would pass `limit`."""

    def __init__(self, encoding: str, limit: int) -> None:
        self._wbits = ENCODINGS[encoding]
        self._limit = limit
        self._produced = 0
        self._started = False
        self._inflater = zlib.decompressobj(self._wbits)

    def _restart_raw(self) -> None:
        # `deflate` is meant to be zlib-wrapped; some clients send raw deflate (so does
        # aiohttp's own decoder accept it): fall back once, before any output.
        self._wbits = RAW
        self._inflater = zlib.decompressobj(RAW)

    def _inflate(self, data: bytes) -> bytes:
        room = self._limit - self._produced + 1  # one byte more tells "over the limit"
        out = self._inflater.decompress(data, room)
        self._produced += len(out)
        if self._produced > self._limit or self._inflater.unconsumed_tail:
            raise TooLarge
        return out

    def feed(self, chunk: bytes) -> bytes:
        """Inflate a chunk of the wire body."""
        parts: list[bytes] = []
        data = chunk
        while data:
            try:
                out = self._inflate(data)
            except zlib.error as exc:
                if self._wbits == ZLIB and not self._started:
                    self._restart_raw()
                    continue
                raise undecodable() from exc
            self._started = True
            parts.append(out)
            data = b""
            if self._inflater.eof and self._inflater.unused_data:
                # Another gzip member follows (concatenated gzip is one valid body).
                data = self._inflater.unused_data
                if self._wbits != GZIP:
                    raise undecodable()
                self._inflater = zlib.decompressobj(GZIP)
        return b"".join(parts)

    def finish(self) -> bytes:
        """The rest, once the wire body ended; 400 if it stopped mid-stream."""
        if not self._inflater.eof:
            raise undecodable()
        return b""
