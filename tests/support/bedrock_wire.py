"""Bedrock as the fake upstream speaks it: recordings framed as AWS event-stream messages
(prelude, headers, payload, both CRC32 checksums), SigV4 signatures checked with botocore, and
what a Converse recording says the answer is (read from the format, not by the gateway)."""

from __future__ import annotations

import binascii
import json
import re
import struct
from pathlib import Path
from typing import Any

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.expected import Expected
from tests.support.readers import Usage
from tests.support.recordings import recordings_dir

REGION = "us-east-1"
ACCESS_KEY = "AKIDEXAMPLEEDGE0TEST"
SECRET_KEY = "edge-test-secret-key-never-sent-0123456789"
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def recording(name: str) -> Path:
    """A file of the Bedrock recordings."""
    return recordings_dir() / "bedrock" / name


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # Header value type 7 is a string, its length in two bytes.
    return (
        bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    )


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: total and headers lengths, prelude CRC, headers, payload,
    message CRC (each CRC32 over every byte before it)."""
    encoded = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    body = prelude + encoded + payload
    return body + struct.pack(">I", binascii.crc32(body))


def event(kind: str, payload: Any) -> bytes:
    """A ConverseStream event message."""
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return message(headers, json.dumps(payload).encode())


def exception(kind: str, text: str) -> bytes:
    """A ConverseStream exception message (a throttling or model error mid-stream)."""
    headers = {
        ":exception-type": kind,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return message(headers, json.dumps({"message": text}).encode())


def frames(path: Path) -> list[bytes]:
    """A `.chunks.txt` recording as the messages Bedrock sends, one per line."""
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            ((kind, payload),) = json.loads(line).items()
            out.append(event(kind, payload))
    return out


def sigv4_check(request: web.Request, body: bytes) -> str | None:
    """None when the request carries a valid SigV4 signature of the test credentials for
    Bedrock in REGION over exactly what arrived (method, path, signed headers, body)."""
    found = _AUTH.fullmatch(request.headers.get("Authorization", ""))
    if found is None:
        return "missing or malformed SigV4 Authorization"
    if (found["key"], found["region"], found["service"]) != (ACCESS_KEY, REGION, "bedrock"):
        return f"wrong credential scope {found['key']}/{found['region']}/{found['service']}"
    signed = found["signed"].split(";")
    headers = {name: request.headers.get(name, "") for name in signed}
    url = f"http://{request.host}{request.raw_path}"
    aws = AWSRequest(method=request.method, url=url, data=body, headers=headers)
    aws.context["timestamp"] = request.headers.get("X-Amz-Date", "")
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "bedrock", REGION)
    canonical = signer.canonical_request(aws)
    expected = signer.signature(signer.string_to_sign(aws, canonical), aws)
    return None if expected == found["signature"] else "signature does not match"


def _usage(usage: dict[str, Any]) -> Usage:
    cached = usage.get("cacheReadInputTokens", 0)
    written = usage.get("cacheWriteInputTokens", 0)
    return Usage(
        input=usage.get("inputTokens", 0) + cached + written,
        output=usage.get("outputTokens", 0),
        cached=cached,
    )


def expected(path: Path) -> Expected:
    """The answer a Converse recording holds: text, reasoning, tool calls, usage."""
    exp = Expected()
    if path.name.endswith(".chunks.txt"):
        calls: dict[int, list[Any]] = {}
        for line in path.read_text().splitlines():
            ((kind, data),) = json.loads(line).items()
            index = data.get("contentBlockIndex")
            if kind == "contentBlockStart" and "toolUse" in data["start"]:
                calls[index] = [data["start"]["toolUse"]["name"], ""]
            elif kind == "contentBlockDelta":
                delta = data["delta"]
                exp.text += delta.get("text", "")
                exp.reasoning += (delta.get("reasoningContent") or {}).get("text", "")
                if "toolUse" in delta:
                    calls[index][1] += delta["toolUse"]["input"]
            elif kind == "metadata":
                exp.usage = _usage(data["usage"])
        exp.calls = [(name, json.loads(args or "{}")) for name, args in calls.values()]
        return exp
    body = json.loads(path.read_text())
    for block in body["output"]["message"]["content"]:
        exp.text += block.get("text", "")
        if "reasoningContent" in block:
            exp.reasoning += block["reasoningContent"]["reasoningText"]["text"]
        if "toolUse" in block:
            exp.calls.append((block["toolUse"]["name"], block["toolUse"]["input"]))
    exp.usage = _usage(body["usage"])
    return exp
