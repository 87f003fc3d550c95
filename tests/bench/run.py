"""`make bench`: every scenario, directly against the fake upstream, through the bare aiohttp
relay (the floor of any aiohttp gateway) and through the gateway, in one run.

python -m tests.bench.run            # the full run (about five minutes)
python -m tests.bench.run --quick    # seconds: a check that the harness works
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from tests.bench.deployments import (
    SPREAD_MODEL,
    selection_figures,
    selection_line,
    write_config,
)
from tests.bench.limits import raise_fd_limit
from tests.bench.redisstats import RedisWatch
from tests.bench.report import (
    RELAY,
    Row,
    compare,
    save,
    table,
    to_json,
    verdict_table,
    verdicts,
)
from tests.bench.scenarios import (
    Target,
    hold_row,
    open_row,
    stream_row,
    unavailable,
    wrk_row,
)
from tests.bench.stack import (
    FakeUpstreamProcess,
    Gateway,
    Service,
    probe,
    provision,
    serve_help,
    start_gateway,
    start_relay,
)
from tests.bench.systems import Scenarios, system_table
from tests.bench.targets import (
    ANTHROPIC_MODEL,
    anthropic_direct,
    direct_target,
    gateway_target,
    relay_target,
)
from tests.bench.upstream import install_uvloop
from tests.support.redis_server import RedisServer

RESULTS = Path(__file__).with_name("results")


@dataclass(frozen=True, slots=True)
class Plan:
    """How long each scenario runs."""

    closed_seconds: float = 5.0
    open50_seconds: float = 10.0
    open500_seconds: float = 6.0
    stream_seconds: float = 5.0
    streams_held: int = 1000
    hold_seconds: float = 30.0
    warmup_seconds: float = 1.0
    log_level: str = "INFO"
    workers: bool = True
    translated: bool = True

    @classmethod
    def quick(cls) -> Plan:
        """Tiny settings: every piece runs, in seconds."""
        return cls(
            closed_seconds=1,
            open50_seconds=1,
            open500_seconds=0.5,
            stream_seconds=0.5,
            streams_held=20,
            hold_seconds=1,
            warmup_seconds=1,
            workers=False,
            translated=True,
        )


# Scenario names, by the role they play in the targets.
SCENARIOS = {
    "c1": "closed c=1",
    "c50": "closed c=50",
    "open50": "open 50/s",
    "open500": "open 500/s",
    "stream10": "stream c=10",
    "hold": "slow streams held",
    "t_c50": "Chat→Anthropic c=50",
    "t_stream10": "Chat→Anthropic stream c=10",
    "spread_c50": "closed c=50, 3 deployments",
}


def machine() -> dict[str, Any]:
    """What the run ran on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit,
        "load_before": os.getloadavg(),
    }


class Bench:
    """One run: processes, targets, rows."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rows: list[Row] = []
        self.meta: dict[str, Any] = {"plan": asdict(plan), "machine": machine()}
        self.redis = RedisServer()
        self.upstream = FakeUpstreamProcess()
        self.gateways: list[Gateway] = []
        self.relay: Service | None = None
        self.names = dict(SCENARIOS)
        self.names["hold"] = f"{plan.streams_held} streams held {plan.hold_seconds:g} s"

    def _gateway(self, workers: int = 1) -> Gateway:
        RESULTS.mkdir(exist_ok=True)
        log = RESULTS / f"gateway-{workers}.log"
        config = write_config(RESULTS / "deployments.toml")
        gw = start_gateway(
            self.redis.url, self.upstream.url, log, self.plan.log_level, workers, config
        )
        self.gateways.append(gw)
        return gw

    async def run(self) -> None:
        """Start everything, run every scenario, stop everything."""
        raise_fd_limit()
        self.redis.start()
        self.upstream.start()
        watch = RedisWatch(self.redis.url, self.redis.proc.pid if self.redis.proc else None)
        try:
            self.relay = start_relay(self.upstream.url)
            gw = self._gateway()
            await provision(gw)
            await self._features(gw)
            await self._main(gw, watch)
            self._stop(gw)
            if self.plan.workers and self.meta["features"]["workers"]:
                gw2 = self._gateway(workers=2)
                gw2.key = gw.key
                target = gateway_target(gw2, "gateway x2")
                await self._warm(target)
                self.rows.append(
                    await wrk_row(self.names["c50"], target, watch, 50, self.plan.closed_seconds)
                )
            elif self.plan.workers:
                self.rows.append(
                    unavailable(self.names["c50"], "gateway x2", "no `--workers` option")
                )
        finally:
            watch.close()
            for g in self.gateways:
                self._stop(g)
            if self.relay is not None:
                self.relay.stop()
            self.upstream.stop()
            self.redis.stop()
        self.meta["machine"]["load_after"] = os.getloadavg()
        # Put the x2 row next to its scenario.
        order = {name: i for i, name in enumerate(self.names.values())}
        self.rows.sort(key=lambda r: order.get(r.scenario, 99))
        compare(self.rows)

    def _stop(self, gw: Gateway) -> None:
        gw.process.stop()

    async def _features(self, gw: Gateway) -> None:
        via = gateway_target(gw, "gateway")
        checked = await probe(
            via.url, {**via.headers, "Content-Type": "application/json"}, via.body
        )
        if checked.status != 200:
            raise RuntimeError(f"the gateway refused the bench request: {checked}")
        lowered = {k.lower() for k in checked.headers}
        translated = gateway_target(gw, "gateway", ANTHROPIC_MODEL)
        pair = await probe(
            translated.url,
            {**translated.headers, "Content-Type": "application/json"},
            translated.body,
        )
        metrics = await probe(f"{gw.url}/metrics", {})
        self.meta["features"] = {
            "upstream_headers_forwarded": "x-ratelimit-limit-requests" in lowered,
            "ratelimit_headers": "ratelimit" in lowered or "ratelimit-policy" in lowered,
            "metrics": metrics.status == 200,
            "workers": "--workers" in serve_help(),
            "translated_pair": pair.status == 200,
            "translated_pair_answer": f"{pair.status} {pair.text[:160]}",
            "uvloop": find_spec("uvloop") is not None,
            "log_level": self.plan.log_level,
        }

    async def _warm(self, target: Target) -> None:
        await wrk_row("warm-up", target, None, 50, self.plan.warmup_seconds)
        await stream_row("warm-up", target, None, 4, self.plan.warmup_seconds / 2)

    async def _main(self, gw: Gateway, watch: RedisWatch) -> None:
        plan, rows = self.plan, self.rows
        assert self.relay is not None
        # The bare relay runs every scenario the gateway does, in the same run: the floor.
        pair = (
            direct_target(self.upstream),
            relay_target(self.relay),
            gateway_target(gw, "gateway"),
        )
        for target in pair:
            await self._warm(target)
        for target in pair:
            rows.append(await wrk_row(self.names["c1"], target, watch, 1, plan.closed_seconds))
        for target in pair:
            rows.append(await wrk_row(self.names["c50"], target, watch, 50, plan.closed_seconds))
        for target in pair:
            rows.append(
                await open_row(self.names["open50"], target, watch, 50, plan.open50_seconds)
            )
        for target in pair:
            rows.append(
                await open_row(self.names["open500"], target, watch, 500, plan.open500_seconds)
            )
        await self.upstream.shape(chunks=20, delay=0.005)
        for target in pair:
            rows.append(
                await stream_row(self.names["stream10"], target, watch, 10, plan.stream_seconds)
            )
        await self._translated(gw, watch)
        await self._spread(gw, watch)
        await self._hold(pair, watch)

    async def _spread(self, gw: Gateway, watch: RedisWatch) -> None:
        """One model over three deployments: the gateway row, and the choosing cost alone."""
        self.meta["selection_us"] = await selection_figures(self.redis.url)
        print(selection_line(self.meta["selection_us"]), flush=True)
        target = gateway_target(gw, "gateway", SPREAD_MODEL)
        await self._warm(target)
        self.rows.append(
            await wrk_row(self.names["spread_c50"], target, watch, 50, self.plan.closed_seconds)
        )

    async def _translated(self, gw: Gateway, watch: RedisWatch) -> None:
        plan, rows = self.plan, self.rows
        if not plan.translated:
            return
        if not self.meta["features"]["translated_pair"]:
            why = "the gateway does not translate Chat Completions to Anthropic Messages yet"
            for name in (self.names["t_c50"], self.names["t_stream10"]):
                rows.append(unavailable(name, "gateway", why))
            return
        pair = (anthropic_direct(self.upstream), gateway_target(gw, "gateway", ANTHROPIC_MODEL))
        for target in pair:
            await self._warm(target)
        for target in pair:
            rows.append(await wrk_row(self.names["t_c50"], target, watch, 50, plan.closed_seconds))
        for target in pair:
            rows.append(
                await stream_row(self.names["t_stream10"], target, watch, 10, plan.stream_seconds)
            )

    async def _hold(self, pair: tuple[Target, ...], watch: RedisWatch) -> None:
        plan = self.plan
        delay = 1.0 if plan.hold_seconds >= 10 else 0.1
        # A chat stream is its deltas plus four events (role, finish, usage, [DONE]).
        chunks = max(1, round(plan.hold_seconds / delay) - 3)
        await self.upstream.shape(chunks=chunks, delay=delay)
        name = self.names["hold"]
        for target in pair:
            self.rows.append(
                await hold_row(name, target, watch, plan.streams_held, plan.hold_seconds)
            )
        await self.upstream.shape(chunks=20, delay=0.0)

    def markdown(self) -> str:
        """The report."""
        m = self.meta["machine"]
        f = self.meta["features"]
        load = ", ".join(f"{x:.2f}" for x in m["load_before"])
        load_after = ", ".join(f"{x:.2f}" for x in m.get("load_after", ()))
        redis_detail = self._redis_detail()
        lines = [
            "# edge benchmark",
            "",
            f"- machine: {m['cpus']} CPUs ({m['cpu']}), Linux {m['kernel']}, "
            f"Python {m['python']}, commit {m['commit']}",
            f"- load average before: {load}; after: {load_after}",
            f"- gateway: one process unless `x2` (`--workers 2`), Redis store, API key + "
            f"X-Branch-Id, per-key requests-per-minute quota, log level {f['log_level']}, "
            f"metrics {'on' if f['metrics'] else 'not available'}, upstream rate-limit headers "
            f"forwarded: {'yes' if f['upstream_headers_forwarded'] else 'no'}",
            "- fake upstream: raw asyncio protocol"
            + (" on uvloop" if f["uvloop"] else "")
            + "; 1 KiB bodies; streams of 20 deltas 5 ms apart",
            "",
            "## Beside the bare relay",
            "",
            system_table(self.rows, self._scenarios(), self._systems()),
            "",
            "The bare relay is an aiohttp handler that POSTs the body to the fake upstream "
            "through one pooled session and relays the answer (tests/bench/floor.py): the floor "
            "of any aiohttp gateway. Added figures are each system's minus direct's in the same "
            f"run: p50 / p99 at {self.names['open50']}, TTFB p50 at {self.names['stream10']}; "
            f"CPU per request at {self.names['c50']} (on the direct line, the fake upstream's).",
            "",
            "## Every scenario",
            "",
            table(self.rows),
            "",
            "Added latency and TTFB are the figure minus the direct one in the same run; "
            "(x%) after req/s is the share of the direct throughput. CPU ms/req and RSS are "
            "those of the server measured (all its processes; the fake upstream's on direct "
            "rows). Redis: commands per request, and in brackets the "
            "round trips (redis-server read events) per request; Redis CPU is redis-server's "
            "own. Held streams: p50/p99 are stream durations, RSS is the peak while they are "
            "open.",
            "",
            "## Targets",
            "",
            verdict_table(verdicts(self.rows, self.names)),
        ]
        if redis_detail:
            lines += [
                "",
                f"Redis commands per request ({self.names['open50']}, gateway): {redis_detail}",
            ]
        if "selection_us" in self.meta:
            lines += ["", selection_line(self.meta["selection_us"])]
        return "\n".join(lines) + "\n"

    def _scenarios(self) -> Scenarios:
        return Scenarios(self.names["c50"], self.names["open50"], self.names["stream10"])

    def _systems(self) -> list[tuple[str, str]]:
        commit = self.meta["machine"]["commit"]
        return [
            ("direct", "direct (the fake upstream)"),
            (RELAY, "bare aiohttp relay"),
            ("gateway", f"**edge** ({commit})"),
            ("gateway x2", "edge `--workers 2`"),
        ]

    def _redis_detail(self) -> str:
        for r in self.rows:
            if r.scenario == self.names["open50"] and r.target == "gateway" and r.redis_commands:
                return ", ".join(f"{k} {v:.2f}" for k, v in r.redis_commands.items())
        return ""

    def write(self, text: str) -> Path:
        """Save JSON and Markdown under results/; returns the Markdown path."""
        data = {"meta": self.meta, "rows": to_json(self.rows), "targets": self.names}
        return save(RESULTS, "bench", "latest", data, text)


def main() -> None:
    """Entry point of `make bench`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny settings (seconds)")
    parser.add_argument("--no-workers", action="store_true", help="skip the --workers 2 run")
    parser.add_argument("--log-level", default="INFO", help="the gateway's EDGE_LOG_LEVEL")
    parser.add_argument("--hold", type=float, help="seconds the slow streams are held")
    parser.add_argument("--streams", type=int, help="how many slow streams are held")
    args = parser.parse_args()
    plan = Plan.quick() if args.quick else Plan()
    changes: dict[str, Any] = {"log_level": args.log_level}
    if args.no_workers:
        changes["workers"] = False
    if args.hold is not None:
        changes["hold_seconds"] = args.hold
    if args.streams is not None:
        changes["streams_held"] = args.streams
    bench = Bench(Plan(**{**asdict(plan), **changes}))
    install_uvloop()
    asyncio.run(bench.run())
    text = bench.markdown()
    path = bench.write(text)
    print(text)
    print(f"(written to {path} and {path.with_suffix('.json')})")


if __name__ == "__main__":
    main()
