"""Closed-loop throughput with wrk (Debian's package), driven by a Lua script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk_post.lua")


@dataclass(frozen=True, slots=True)
class WrkResult:
    """wrk's summary: counts and latency percentiles in seconds."""

    requests: int
    seconds: float
    errors: int
    non_2xx: int
    p50: float
    p90: float
    p99: float

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_binary() -> str:
    """Path of wrk; `make bench` installs it with apt when missing."""
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: run `make bench` (it installs it)")
    return found


def run_wrk(
    url: str,
    headers: dict[str, str],
    body: bytes,
    connections: int,
    seconds: float,
    threads: int = 1,
) -> WrkResult:
    """POST `body` to `url` from `connections` keep-alive connections for `seconds`."""
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as fh:
        fh.write(body)
        body_path = fh.name
    env = {
        **os.environ,
        "BENCH_BODY": body_path,
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items()),
    }
    try:
        proc = subprocess.run(
            [
                wrk_binary(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(SCRIPT),
                url,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=False,
        )
    finally:
        Path(body_path).unlink(missing_ok=True)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line[len("BENCH_JSON ") :])
            break
    else:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    lat = data["latency_us"]
    errs = data["errors"]
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errs["connect"] + errs["read"] + errs["write"] + errs["timeout"],
        non_2xx=errs["status"],
        p50=lat["p50"] / 1e6,
        p90=lat["p90"] / 1e6,
        p99=lat["p99"] / 1e6,
    )
