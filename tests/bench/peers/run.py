"""`make bench-peers`: direct, the bare relay, edge, LiteLLM proxy and the Portkey gateway in one
run, against the same fake upstream, measured by the same scenarios as `make bench`.

python -m tests.bench.peers.run             # installs the pinned peers, then about four minutes
python -m tests.bench.peers.run --quick     # seconds per system: checks that each one answers
python -m tests.bench.peers.run --skip litellm --skip portkey

Every server is started on 127.0.0.1 and stopped at the end, also on failure, Ctrl-C or SIGTERM.
A peer that cannot be installed or does not answer is skipped with the reason printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.limits import raise_fd_limit
from tests.bench.peers import install
from tests.bench.peers.servers import (
    litellm_version,
    portkey_version,
    start_litellm,
    start_portkey,
)
from tests.bench.redisstats import RedisWatch
from tests.bench.report import RELAY, Row, compare, save, table, to_json
from tests.bench.run import RESULTS, machine
from tests.bench.scenarios import Target, open_row, stream_row, unavailable, wrk_row
from tests.bench.stack import (
    FakeUpstreamProcess,
    Service,
    probe,
    provision,
    start_gateway,
    start_relay,
)
from tests.bench.systems import OPEN_RATE, Scenarios, system_table
from tests.bench.targets import direct_target, gateway_target, relay_target
from tests.bench.upstream import install_uvloop
from tests.support.redis_server import RedisServer

NAMES = Scenarios("closed c=50", f"open {OPEN_RATE}/s", "stream c=10")
PEERS = ("litellm", "portkey")
Starter = Callable[[str, FakeUpstreamProcess, Path], tuple[Service, Target]]


@dataclass(frozen=True, slots=True)
class Plan:
    """How long each scenario runs, per system."""

    closed_seconds: float = 5.0
    open_seconds: float = 10.0
    stream_seconds: float = 5.0
    warmup_seconds: float = 2.0

    @classmethod
    def quick(cls) -> Plan:
        """A second or so per scenario: each system is started, called and stopped."""
        return cls(closed_seconds=1, open_seconds=1, stream_seconds=0.5, warmup_seconds=1)


@dataclass
class Peers:
    """One run: the processes, the rows, and what was skipped and why."""

    plan: Plan
    skip: set[str]
    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.redis = RedisServer()
        self.upstream = FakeUpstreamProcess()
        self.labels = {
            "litellm": f"LiteLLM {litellm_version()}",
            "portkey": f"Portkey {portkey_version()}",
        }
        self.meta = {"plan": asdict(self.plan), "machine": machine()}

    async def run(self) -> None:
        """Start each system in turn, measure it, stop it; everything is stopped at the end."""
        raise_fd_limit()
        self.redis.start()
        self.upstream.start()
        watch = RedisWatch(self.redis.url, self.redis.proc.pid if self.redis.proc else None)
        try:
            # Non-streamed answers are 1 KiB; streams are 20 deltas 5 ms apart, as in make bench.
            await self.upstream.shape(chunks=20, delay=0.005)
            await self._measure(direct_target(self.upstream), watch)
            relay = self._keep(start_relay(self.upstream.url))
            await self._measure(relay_target(relay), watch)
            relay.stop()
            await self._edge(watch)
            starters: dict[str, Starter] = {"litellm": start_litellm, "portkey": start_portkey}
            for name, start in starters.items():
                await self._peer(name, start, watch)
        finally:
            watch.close()
            for service in reversed(self.services):
                service.stop()
            self.upstream.stop()
            self.redis.stop()
        self.meta["machine"]["load_after"] = os.getloadavg()
        compare(self.rows)

    def _keep(self, service: Service) -> Service:
        self.services.append(service)
        return service

    async def _edge(self, watch: RedisWatch) -> None:
        RESULTS.mkdir(exist_ok=True)
        gw = start_gateway(self.redis.url, self.upstream.url, RESULTS / "peers-edge.log", "INFO")
        try:
            await provision(gw)
            await self._measure(gateway_target(gw, "gateway"), watch)
        finally:
            gw.process.stop()

    async def _peer(self, name: str, start: Starter, watch: RedisWatch) -> None:
        label = self.labels[name]
        if name in self.skip:
            self._skip(label, "skipped (--skip)")
            return
        print(f"{label}: installing (pinned) and starting", flush=True)
        try:
            # Not in a thread: a Ctrl-C meanwhile must find the server in self.services.
            service, target = start(label, self.upstream, RESULTS / f"peers-{name}.log")
        except (install.Unavailable, RuntimeError) as exc:
            self._skip(label, str(exc))
            return
        self._keep(service)
        try:
            await self._measure(target, watch)
        finally:
            service.stop()

    def _skip(self, label: str, why: str) -> None:
        print(f"{label}: not measured: {why}", flush=True)
        self.skipped.append(f"{label}: {why}")
        self.rows.append(unavailable(NAMES.c50, label, why))

    async def _measure(self, target: Target, watch: RedisWatch) -> None:
        """Check that it answers both ways, warm it, then the three scenarios."""
        headers = {**target.headers, "Content-Type": "application/json"}
        for body in (target.body, target.stream_body):
            answer = await probe(target.url, headers, body)
            if answer.status != 200:
                self._skip(target.label, f"answered {answer.status}: {answer.text[:200]}")
                return
        plan = self.plan
        print(f"{target.label}: measuring", flush=True)
        await wrk_row("warm-up", target, None, 50, plan.warmup_seconds)
        await stream_row("warm-up", target, None, 4, plan.warmup_seconds / 2)
        self.rows.append(await wrk_row(NAMES.c50, target, watch, 50, plan.closed_seconds))
        self.rows.append(await open_row(NAMES.open50, target, watch, OPEN_RATE, plan.open_seconds))
        self.rows.append(await stream_row(NAMES.stream10, target, watch, 10, plan.stream_seconds))

    def systems(self) -> list[tuple[str, str]]:
        """Row labels and the names shown for them."""
        commit = self.meta["machine"]["commit"]
        return [
            ("direct", "direct (the fake upstream)"),
            (RELAY, "bare aiohttp relay"),
            ("gateway", f"**edge** ({commit})"),
            (self.labels["litellm"], f"LiteLLM proxy {litellm_version()} (1 worker)"),
            (self.labels["portkey"], f"Portkey gateway {portkey_version()} ({_node_version()})"),
        ]

    def markdown(self) -> str:
        """The report."""
        m = self.meta["machine"]
        load = ", ".join(f"{x:.2f}" for x in m["load_before"])
        after = ", ".join(f"{x:.2f}" for x in m.get("load_after", ()))
        lines = [
            "# edge and its peers",
            "",
            f"- machine: {m['cpus']} CPUs ({m['cpu']}), Linux {m['kernel']}, "
            f"Python {m['python']}, commit {m['commit']}; load average before: {load}; "
            f"after: {after}",
            "- one process each, one after the other, against the same fake upstream (1 KiB "
            "answers; streams of 20 deltas 5 ms apart), everything on 127.0.0.1",
            "- edge: Redis store, API key + X-Branch-Id, a per-key request quota on every call, "
            "INFO logs; LiteLLM: tests/bench/peers/litellm/config.yaml (an `openai/` model with "
            "`api_base`, a master key); Portkey: `x-portkey-provider: openai` and "
            "`x-portkey-custom-host` on each call",
            "",
            system_table(self.rows, NAMES, self.systems()),
            "",
            f"Added figures are each system's minus direct's in the same run: p50 / p99 at "
            f"{NAMES.open50} (open loop), TTFB p50 at {NAMES.stream10}; CPU per request at "
            f"{NAMES.c50}, all the system's processes (edge's redis-server apart; on the direct "
            "line, the fake upstream's).",
            "",
            "## Every scenario",
            "",
            table(self.rows),
        ]
        if self.skipped:
            lines += ["", "Not measured:", "", *(f"- {why}" for why in self.skipped)]
        return "\n".join(lines) + "\n"

    def write(self, text: str) -> Path:
        """Save JSON and Markdown under results/; returns the Markdown path."""
        data = {"meta": self.meta, "rows": to_json(self.rows), "skipped": self.skipped}
        return save(RESULTS, "peers", "peers-latest", data, text)


def _node_version() -> str:
    with contextlib.suppress(install.Unavailable, OSError, subprocess.SubprocessError):
        node = install.node()
        done = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=30)
        return f"Node {done.stdout.strip().lstrip('v')}"
    return "Node"


async def _main(peers: Peers) -> None:
    # SIGTERM stops the run like Ctrl-C does: the servers are stopped on the way out.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await peers.run()


def main() -> None:
    """Entry point of `make bench-peers`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about a second per scenario")
    parser.add_argument("--skip", action="append", choices=PEERS, default=[])
    args = parser.parse_args()
    peers = Peers(Plan.quick() if args.quick else Plan(), set(args.skip))
    install_uvloop()
    try:
        asyncio.run(_main(peers))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("stopped: every server it started has been stopped", file=sys.stderr)
        sys.exit(130)
    text = peers.markdown()
    path = peers.write(text)
    print(text)
    print(f"(written to {path} and {path.with_suffix('.json')})")


if __name__ == "__main__":
    main()
