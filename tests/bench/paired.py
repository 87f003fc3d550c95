"""`make bench-paired BASE=<commit>`: the gateway at BASE and the working tree, both running at
once, measured in alternating rounds (open loop at 50 req/s, closed c=50) beside the bare relay.

Two `make bench` runs minutes apart differ by more than most changes do: the machine's load
drifts between them. Here both builds serve at the same time, each round measures them back to
back in alternating order, and the medians over rounds are compared, so drift lands on both.

python -m tests.bench.paired c4e1256 --rounds 8 --seconds 12
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench.limits import raise_fd_limit
from tests.bench.report import Row
from tests.bench.scenarios import Target, open_row, wrk_row
from tests.bench.stack import FakeUpstreamProcess, Gateway, Service, provision, start_relay
from tests.bench.targets import gateway_target, relay_target
from tests.support.gateway import GatewayProcess, gateway_env
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


@dataclass(slots=True)
class Figures:
    """One build's rows over the rounds."""

    label: str
    open50: list[Row] = field(default_factory=list)
    c50: list[Row] = field(default_factory=list)

    def line(self) -> str:
        """Medians over the rounds."""

        def med(rows: list[Row], attr: str) -> float:
            return float(statistics.median(getattr(r, attr) for r in rows))

        errors = sum(r.errors for r in self.open50 + self.c50)
        p99s = [r.p99 for r in self.open50]
        return (
            f"{self.label:<22} open 50/s p50 {med(self.open50, 'p50'):5.2f} ms"
            f"  p99 {med(self.open50, 'p99'):5.2f} ms ({min(p99s):.2f}-{max(p99s):.2f})"
            f"   c=50 {med(self.c50, 'rps'):7,.0f} req/s  errors {errors}"
        )


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """A detached checkout of `commit`, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="edge-base-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), commit],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False
            )


async def measure(targets: list[Target], rounds: int, seconds: float) -> list[Figures]:
    """Warm each target, then alternate: every round runs each target once, order reversed
    on odd rounds so neither build always goes first."""
    figures = [Figures(t.label) for t in targets]
    for t in targets:
        await wrk_row("warm-up", t, None, 50, 2.0)
        await open_row("warm-up", t, None, 50, 2.0)
    for n in range(rounds):
        pairs = list(zip(targets, figures, strict=True))
        for target, fig in pairs if n % 2 == 0 else reversed(pairs):
            fig.open50.append(await open_row("open 50/s", target, None, 50, seconds))
            fig.c50.append(await wrk_row("closed c=50", target, None, 50, seconds / 2))
            print(f"round {n + 1}/{rounds}: {fig.label} measured", flush=True)
    return figures


async def run(base: str, rounds: int, seconds: float) -> list[Figures]:
    """Start the upstream, the relay and both builds (each on its own redis-server), measure."""
    raise_fd_limit()
    upstream = FakeUpstreamProcess().start()
    relay: Service | None = None
    servers: list[RedisServer] = []
    gateways: list[Gateway] = []
    log_dir = Path(tempfile.mkdtemp(prefix="edge-paired-"))
    try:
        relay = start_relay(upstream.url)
        with worktree(base) as base_tree:
            targets = [relay_target(relay)]
            for label, tree in ((f"gateway {base}", base_tree), ("gateway (tree)", ROOT)):
                redis = RedisServer()
                redis.start()
                servers.append(redis)
                env = gateway_env(redis.url, upstream.url, EDGE_LOG_LEVEL="INFO")
                process = GatewayProcess(env)
                process.cwd, process.log = tree, log_dir / f"{len(servers)}.log"
                gw = Gateway(process.start())
                gateways.append(gw)
                await provision(gw)
                targets.append(gateway_target(gw, label))
            return await measure(targets, rounds, seconds)
    finally:
        for gw in gateways:
            gw.process.stop()
        if relay is not None:
            relay.stop()
        upstream.stop()
        for redis in servers:
            redis.stop()


def main() -> None:
    """Parse the arguments, run, print one line per build."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=12.0, help="open-loop seconds a round")
    args = parser.parse_args()
    figures = asyncio.run(run(args.base, args.rounds, args.seconds))
    print(f"\nmedians over {args.rounds} rounds:")
    for fig in figures:
        print(fig.line())


if __name__ == "__main__":
    main()
