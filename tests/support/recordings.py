"""The recorded provider traffic (tests/recordings), framed as each API sends it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Api = Literal["openai-chat", "openai-responses", "anthropic", "gemini"]


def recordings_dir() -> Path:
    """The recorded provider traffic: $EDGE_RECORDINGS, else a `shared/recordings` folder
    beside the repository, else the unchanged copy kept in tests/recordings."""
    import os

    env = os.environ.get("EDGE_RECORDINGS")
    if env:
        return Path(env)
    tests = Path(__file__).resolve().parent.parent
    beside = tests.parent.parent / "shared" / "recordings"
    return beside if beside.is_dir() else tests / "recordings"


@dataclass(frozen=True)
class Recording:
    """One recorded exchange."""

    api: Api
    path: Path

    @property
    def name(self) -> str:
        """File name."""
        return self.path.name

    @property
    def streamed(self) -> bool:
        """A stream recording (chunks or raw SSE)."""
        return self.path.name.endswith((".chunks.txt", ".sse"))

    def events(self) -> list[dict[str, Any]]:
        """The JSON of each streamed event (for `.sse`, parsed from the raw bytes)."""
        if self.path.suffix == ".sse":
            out = []
            for line in self.path.read_text().splitlines():
                if line.startswith("data:") and line[5:].strip() != "[DONE]":
                    out.append(json.loads(line[5:].strip()))
            return out
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def body(self) -> dict[str, Any]:
        """A whole response (or error) body."""
        data: dict[str, Any] = json.loads(self.path.read_text())
        return data

    def wire(self) -> bytes:
        """The bytes the provider sent."""
        if self.path.suffix == ".sse":
            return self.path.read_bytes()
        if not self.streamed:
            return self.path.read_bytes()
        frames = []
        for line in self.path.read_text().splitlines():
            if not line.strip():
                continue
            if self.api in ("openai-responses", "anthropic"):
                # Read by pattern: some recorded events really are cut short (invalid JSON).
                found = re.search(r'"type"\s*:\s*"([^"]+)"', line)
                assert found is not None, f"no event type in {line[:80]}"
                kind = found.group(1)
                frames.append(f"event: {kind}\ndata: {line}\n\n")
            else:
                frames.append(f"data: {line}\n\n")
        if self.api == "openai-chat":
            frames.append("data: [DONE]\n\n")
        return "".join(frames).encode()

    def frames(self) -> list[bytes]:
        """The wire bytes split into events (one write each, as a server would send them)."""
        data = self.wire()
        frames = []
        start = 0
        while (end := data.find(b"\n\n", start)) != -1:
            frames.append(data[start : end + 2])
            start = end + 2
        if start < len(data):
            frames.append(data[start:])  # an unterminated tail is sent as it is
        return frames


def recordings(api: Api) -> list[Recording]:
    """Every recording of an API."""
    folder = recordings_dir() / api
    return [Recording(api, p) for p in sorted(folder.iterdir()) if p.is_file()]
