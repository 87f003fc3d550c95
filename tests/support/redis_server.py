"""A real redis-server on a free loopback port, which tests can kill and restart."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.clock import Deadline
from tests.support.ports import free_port

# Another server speaking the protocol, e.g. EDGE_TEST_REDIS_SERVER=valkey-server: every test
# that starts a Redis (single, cluster and Sentinel) then starts that one instead.
SERVER_VAR = "EDGE_TEST_REDIS_SERVER"


def redis_binary() -> str:
    """Path of redis-server (or of $EDGE_TEST_REDIS_SERVER); `make test` installs redis-server
    with apt when missing."""
    chosen = os.environ.get(SERVER_VAR)
    if chosen:
        path = shutil.which(chosen)
        if path is None:
            raise RuntimeError(f"{SERVER_VAR}={chosen}: no such executable")
        return path
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        raise RuntimeError("redis-server is not installed: run `make test` (it installs it)")
    return found


class RedisServer:
    """One redis-server process."""

    def __init__(self, port: int | None = None, extra: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="edge-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra = list(extra)  # more options: cluster mode, replicaof...

    @property
    def url(self) -> str:
        """redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start and wait until it accepts connections."""
        self.proc = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--protected-mode",
                "no",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = Deadline(10)
        while not deadline.passed():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def restart(self) -> None:
        """A clean restart on the same port: SHUTDOWN SAVE writes the data set to disk, and the
        new process loads it (what an orderly Redis upgrade or failover does)."""
        assert self.proc is not None
        with contextlib.suppress(OSError):  # the server closes the connection as it exits
            self.command("SHUTDOWN", "SAVE")
        self.proc.wait(timeout=10)
        self.proc = None
        self.start()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        """Terminate and clean up."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def command(self, *args: str) -> bytes:
        """Run one command over a raw socket and return the raw reply (RESP)."""
        frame = f"*{len(args)}\r\n".encode()
        for arg in args:
            raw = arg.encode()
            frame += b"$%d\r\n%s\r\n" % (len(raw), raw)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(frame)
            return sock.recv(1 << 20)
