"""A real Redis Cluster of 3 masters and 3 replicas on free loopback ports, built with
`redis-cli --cluster create`, whose masters the tests can kill."""

from __future__ import annotations

import shutil
import subprocess
import time

from redis import Redis
from redis.crc import key_slot

from tests.support.clock import Deadline
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

CREATE_OPTIONS = ("--cluster-replicas", "1", "--cluster-yes")
NODE_TIMEOUT_MS = 1000  # how long a silent master stays a master: a failover takes ~2 s


def redis_cli() -> str:
    """Path of redis-cli (from the redis-server package)."""
    found = shutil.which("redis-cli")
    if found is None:
        raise RuntimeError("redis-cli is not installed: run `make system-deps`")
    return found


class RedisCluster:
    """Six cluster-mode redis-server processes, three of them masters."""

    def __init__(self, masters: int = 3) -> None:
        self.nodes = [
            RedisServer(
                extra=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(NODE_TIMEOUT_MS),
                    # The bus port is chosen free too: port + 10000 may be taken or too high.
                    "--cluster-port",
                    str(free_port()),
                    "--cluster-replica-validity-factor",
                    "0",  # any replica may be promoted, however long its master was away
                ]
            )
            for _ in range(masters * 2)
        ]

    @property
    def url(self) -> str:
        """redis+cluster:// URL naming every node as a seed."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> RedisCluster:
        """Start the nodes, join them, and wait until every slot is served."""
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [redis_cli(), "--cluster", "create", *addresses, *CREATE_OPTIONS],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        self.wait_ok()
        return self

    def live(self) -> list[RedisServer]:
        """The nodes whose process runs."""
        return [n for n in self.nodes if n.proc is not None]

    def wait_ok(self, seconds: float = 30) -> None:
        """Until every live node says the cluster is ok and sees every other live node's role."""
        deadline = Deadline(seconds)
        while not deadline.passed():
            if all(b"cluster_state:ok" in n.command("CLUSTER", "INFO") for n in self.live()):
                return
            time.sleep(0.05)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def masters(self) -> list[RedisServer]:
        """The live nodes that are masters now."""
        return [n for n in self.live() if b"role:master" in n.command("INFO", "replication")]

    def master_of(self, key: str) -> RedisServer:
        """The live master serving a key's slot now (as a live node's slot map says)."""
        slot = key_slot(key.encode())
        with Redis(port=self.live()[0].port, socket_timeout=2) as client:
            ranges = client.execute_command("CLUSTER", "SLOTS")
        for first, last, master, *_ in ranges:
            if first <= slot <= last:
                port = int(master[1])
                return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"no master serves slot {slot}")

    def flush(self) -> None:
        """Empty every master (their replicas follow)."""
        for node in self.masters():
            node.command("FLUSHALL")

    def kill_master_of(self, key: str) -> RedisServer:
        """SIGKILL the master of a key's slot; its replica is promoted after the node timeout."""
        victim = self.master_of(key)
        victim.kill()
        return victim

    def rejoin(self, node: RedisServer) -> None:
        """Start a killed node again: it rejoins as a replica of the master that replaced it."""
        node.start()
        self.wait_ok()

    def stop(self) -> None:
        """Terminate every node."""
        for node in self.nodes:
            node.stop()
