"""The README's quickstart commands work as written against `edge serve --demo`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.clock import Deadline
from tests.support.ports import free_port

README = Path(__file__).resolve().parent.parent / "README.md"


def quickstart_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(sh|python)\n(.*?)```", section, flags=re.S)


@pytest.fixture
def demo(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGE_", "OPENAI_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    env_file = tmp_path / ".edge" / "demo.env"
    deadline = Deadline(30)
    while not env_file.exists():
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        deadline.check("demo env file not written")
        time.sleep(0.05)
    yield tmp_path, proc
    proc.terminate()
    proc.communicate(timeout=10)


def test_quickstart(demo) -> None:
    cwd, _ = demo
    blocks = quickstart_blocks()
    assert [kind for kind, _ in blocks] == ["sh", "sh", "python"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGE_", "OPENAI_"))}
    plain = subprocess.run(
        ["bash", "-c", blocks[0][1]], cwd=cwd, env=env, capture_output=True, text=True, timeout=30
    )
    assert plain.returncode == 0 and '"content":"Echo: Hello, edge"' in plain.stdout, plain
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in (cwd / ".edge" / "demo.env").read_text().splitlines()
    )
    # The next blocks run in the same shell as the first, so its `source` still applies.
    streamed = subprocess.run(
        ["bash", "-c", blocks[1][1]],
        cwd=cwd,
        env={**env, **exports},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert streamed.stdout.rstrip().endswith("data: [DONE]"), streamed
    assert streamed.stdout.count("data: ") >= 5
    sdk = subprocess.run(
        [sys.executable, "-c", blocks[2][1]],
        cwd=cwd,
        env={**env, **exports},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sdk.returncode == 0, sdk.stderr
    assert sdk.stdout.splitlines() == ["Echo: Hello, edge", "Echo: Hello, edge"]
    # The server printed the key it wrote.
    assert exports["EDGE_KEY"].startswith("ek_")
