"""A Sentinel-managed Redis on free loopback ports: one master, one replica and three sentinels
(quorum 2), whose master the tests can kill so a sentinel promotes the replica."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from tests.support.clock import Deadline
from tests.support.ports import free_port
from tests.support.redis_server import SERVER_VAR, RedisServer, redis_binary

MASTER = "edgemaster"
DOWN_AFTER_MS = 1000  # a master silent this long is down: a failover takes ~2-3 s


def sentinel_command() -> list[str]:
    """redis-sentinel (Debian package redis-sentinel), or the server in sentinel mode (always,
    when $EDGE_TEST_REDIS_SERVER names another server)."""
    found = None if os.environ.get(SERVER_VAR) else shutil.which("redis-sentinel")
    return [found] if found else [redis_binary(), "--sentinel"]


class Sentinel:
    """One sentinel process."""

    def __init__(self, master_port: int) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="edge-sentinel-")
        self.config = Path(self.dir) / "sentinel.conf"
        # Sentinel rewrites its configuration file as it learns the topology: a file of its own.
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.dir}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until it answers."""
        first, *rest = sentinel_command()
        self.proc = subprocess.Popen(
            [first, str(self.config), *rest],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = Deadline(10)
        while not deadline.passed():
            try:
                with Redis(port=self.port, socket_timeout=1) as client:
                    client.ping()
                    return
            except (OSError, RedisError):
                time.sleep(0.02)
        raise RuntimeError("redis-sentinel did not start")

    def ask(self, *args: str) -> object:
        """One SENTINEL subcommand's reply."""
        with Redis(port=self.port, socket_timeout=2, decode_responses=True) as client:
            return client.execute_command("SENTINEL", *args)

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


class SentinelSet:
    """A master, its replica and three sentinels watching them."""

    def __init__(self) -> None:
        self.servers = [RedisServer()]
        self.servers.append(
            RedisServer(extra=["--replicaof", "127.0.0.1", str(self.servers[0].port)])
        )
        self.sentinels = [Sentinel(self.servers[0].port) for _ in range(3)]

    @property
    def url(self) -> str:
        """redis+sentinel:// URL naming the three sentinels."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def start(self) -> SentinelSet:
        """Start everything; wait until the replica is in sync and the sentinels know one
        another and the replica (what a failover needs)."""
        for server in self.servers:
            server.start()
        for sentinel in self.sentinels:
            sentinel.start()
        self.wait_ready()
        return self

    def master(self) -> RedisServer:
        """The server the sentinels name as master now."""
        _host, port = self.sentinels[0].ask("GET-MASTER-ADDR-BY-NAME", MASTER)  # type: ignore[misc]
        return next(s for s in self.servers if s.port == int(port))

    def wait_ready(self, seconds: float = 30) -> None:
        """Until the sentinels agree on a live master that has its replica in sync."""
        deadline = Deadline(seconds)
        while not deadline.passed():
            try:
                master = self.master()
                known = self.sentinels[0].ask("MASTER", MASTER)
                info = master.command("INFO", "replication")
            except (OSError, RedisError, StopIteration):
                time.sleep(0.05)
                continue
            fields = known if isinstance(known, dict) else {}  # redis-py parses the reply
            if (
                master.proc is not None
                and b"role:master" in info
                and b"state=online" in info
                and int(fields.get("num-other-sentinels", 0)) == 2
                and int(fields.get("num-slaves", 0)) == 1
                and not fields.get("is_sdown")
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("the sentinel set did not become ready")

    def flush(self) -> None:
        """Empty the master (its replica follows)."""
        self.master().command("FLUSHALL")

    def kill_master(self) -> RedisServer:
        """SIGKILL the master: the sentinels promote the replica after DOWN_AFTER_MS."""
        victim = self.master()
        victim.kill()
        return victim

    def wait_promoted(self, old: RedisServer, seconds: float = 30) -> RedisServer:
        """Until the sentinels name another server as master, and it says it is one."""
        deadline = Deadline(seconds)
        while not deadline.passed():
            try:
                now = self.master()
                if now is not old and b"role:master" in now.command("INFO", "replication"):
                    return now
            except (OSError, RedisError, StopIteration):
                pass
            time.sleep(0.05)
        raise RuntimeError("no replica was promoted")

    def rejoin(self, old: RedisServer) -> None:
        """Start a killed master again: the sentinels make it a replica of the new master."""
        old.start()
        self.wait_ready()

    def stop(self) -> None:
        """Terminate everything."""
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()
