"""`make bench-scaling`: how the gateway's cost grows as one dimension grows, the rest small.

Five curves, each directly against the fake upstream and through two gateways (store
memory:// and Redis): the request body (1 KiB to 8 MiB), the streamed answer's length (10 to
10,000 deltas), the streams open at once (10 to 2,000), the turns of a stored conversation
continued with `previous_response_id` (1 to 100), and the keys and accounts in the store (100
to 1,000,000 on Redis, written by pipelines; to 10,000 on memory://, made through the admin
API), called with keys spread over thousands of them. Each point gives the gateway's CPU per
call and its added latency; the marginal CPU per unit of work between two points shows a step
that costs more than the work it adds (super-linear). The curves are drawn as one chart,
results/scaling.png.

python -m tests.bench.scaling              # about six minutes
python -m tests.bench.scaling --quick      # seconds: small points, short runs
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis

from tests.bench import procstat
from tests.bench.chart import Panel, Point, draw, finite
from tests.bench.limits import raise_fd_limit
from tests.bench.population import Keys, fill_admin, fill_redis
from tests.bench.redisstats import RedisWatch
from tests.bench.report import Row, compare, save, to_json
from tests.bench.run import RESULTS, machine
from tests.bench.scenarios import Target, closed_row, hold_row, spread_row, stream_row
from tests.bench.stack import FakeUpstreamProcess, Gateway, provision, start_gateway
from tests.bench.targets import (
    ANTHROPIC_MODEL,
    OPENAI_MODEL,
    OPENAI_UPSTREAM,
    PROMPT,
    anthropic_direct,
    direct_target,
    gateway_target,
)
from tests.bench.upstream import install_uvloop
from tests.support.gateway import ADMIN_TOKEN
from tests.support.redis_server import RedisServer

KIB = 1024
STORES = ("memory://", "redis://")
# A step is marked super-linear when its marginal CPU per unit of work is this many times the
# previous step's (and the call's CPU at least doubled: small steps are noise).
SUPERLINEAR = 1.5


@dataclass(frozen=True, slots=True)
class Plan:
    """The points of each curve and how long each is measured."""

    bodies: tuple[int, ...] = (KIB, 64 * KIB, 1024 * KIB, 8192 * KIB)
    deltas: tuple[int, ...] = (10, 100, 1000, 10_000)
    streams: tuple[int, ...] = (10, 100, 1000, 2000)
    turns: tuple[int, ...] = (1, 10, 100)
    keys: tuple[int, ...] = (100, 1000, 10_000, 100_000, 1_000_000)
    admin_keys: int = 10_000  # memory://'s last point: made through the admin API
    spread: int = 4096  # distinct keys called at a point (all of them, when fewer)
    seconds: float = 3.0  # per point and target, closed loop
    hold_seconds: float = 5.0  # how long each of the concurrent streams lasts

    @classmethod
    def quick(cls) -> Plan:
        """Two small points per curve, a second each."""
        return cls(
            bodies=(KIB, 64 * KIB),
            deltas=(10, 100),
            streams=(10, 50),
            turns=(1, 5),
            keys=(100, 1000),
            admin_keys=1000,
            spread=512,
            seconds=1.0,
            hold_seconds=1.0,
        )


@dataclass(frozen=True, slots=True)
class Curve:
    """One dimension: what grows, its unit, and the rows of each point (name → x)."""

    title: str
    unit: str  # of the marginal cost: "KiB", "delta"; "" when each call does the same work
    points: dict[str, float]
    axis: str = ""  # what grows, as the chart's x axis names it


def sized_body(model: str, size: int) -> bytes:
    """A Chat Completions request of about `size` bytes (one long user message)."""
    base = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": ""}]}
    pad = max(0, size - len(orjson.dumps(base)))
    base["messages"] = [{"role": "user", "content": "x" * pad}]
    return orjson.dumps(base)


def _label(nbytes: int) -> str:
    return f"{nbytes // (1024 * KIB)} MiB" if nbytes >= 1024 * KIB else f"{nbytes // KIB} KiB"


@dataclass
class Scaling:
    """One run: the processes, the rows, the curves."""

    plan: Plan
    rows: list[Row] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.redis = RedisServer()
        self.upstream = FakeUpstreamProcess()
        self.gateways: dict[str, Gateway] = {}
        self.notes: dict[str, list[str]] = {}  # Markdown under a curve's table, by title
        self.meta = {"plan": asdict(self.plan), "machine": machine()}

    async def run(self) -> None:
        """Start the fake, Redis and a gateway on each store; run each curve; stop them."""
        raise_fd_limit()
        RESULTS.mkdir(parents=True, exist_ok=True)  # the gateways' logs go there too
        watch: RedisWatch | None = None
        try:
            self.redis.start()
            self.upstream.start()
            watch = RedisWatch(self.redis.url, self.redis.proc.pid if self.redis.proc else None)
            targets = [direct_target(self.upstream)]
            for store in STORES:
                url = self.redis.url if store == "redis://" else store
                log = RESULTS / f"scaling-{store.rstrip(':/')}.log"
                gw = start_gateway(url, self.upstream.url, log, "INFO")
                self.gateways[store] = gw
                await provision(gw)
                # Only the Redis gateway's traffic is counted against redis-server.
                targets.append(replace(gateway_target(gw, store), store=store == "redis://"))
            await self._bodies(targets, watch)
            await self._deltas(targets, watch)
            await self._streams(targets, watch)
            await self._chains(targets, watch)
            await self._keys(targets, watch)
        finally:
            if watch is not None:
                watch.close()
            for gw in self.gateways.values():
                gw.process.stop()
            self.upstream.stop()
            self.redis.stop()
        self.meta["machine"]["load_after"] = os.getloadavg()
        compare(self.rows)

    async def _points(
        self,
        targets: list[Target],
        points: dict[str, float],
        measure: Callable[[str, Target], Awaitable[Row]],
        before: Callable[[float], Awaitable[None]],
    ) -> None:
        for name, x in points.items():
            await before(x)
            for target in targets:
                print(f"{name}: {target.label}", flush=True)
                self.rows.append(await measure(name, target))

    async def _bodies(self, targets: list[Target], watch: RedisWatch) -> None:
        points = {f"request body {_label(n)}": n / KIB for n in self.plan.bodies}
        sizes = dict(zip(points, self.plan.bodies, strict=True))

        async def measure(name: str, target: Target) -> Row:
            model = OPENAI_UPSTREAM if target.label == "direct" else OPENAI_MODEL
            sized = replace(target, body=sized_body(model, sizes[name]))
            await closed_row("warm-up", sized, None, 1, 0.5)
            return await closed_row(name, sized, watch, 1, self.plan.seconds)

        async def before(_: float) -> None:
            await self.upstream.shape(chunks=20, delay=0.0)

        await self._points(targets, points, measure, before)
        self.curves.append(Curve("Request body", "KiB", points, "request body, KiB"))

    async def _deltas(self, targets: list[Target], watch: RedisWatch) -> None:
        points = {f"stream of {n:,} deltas": float(n) for n in self.plan.deltas}

        async def measure(name: str, target: Target) -> Row:
            await stream_row("warm-up", target, None, 1, 0.5)
            return await stream_row(name, target, watch, 1, self.plan.seconds)

        async def before(x: float) -> None:
            await self.upstream.shape(chunks=int(x), delay=0.0)

        await self._points(targets, points, measure, before)
        title = "Streamed answer length (one stream at a time)"
        self.curves.append(Curve(title, "delta", points, "deltas in the answer"))

    async def _streams(self, targets: list[Target], watch: RedisWatch) -> None:
        points = {f"{n:,} streams open": float(n) for n in self.plan.streams}
        hold = self.plan.hold_seconds
        delay = 0.25 if hold >= 2 else 0.05
        counts = dict(zip(points, self.plan.streams, strict=True))

        async def measure(name: str, target: Target) -> Row:
            idle = await _idle_cpu(target)
            row = await hold_row(name, target, watch, counts[name], hold)
            # Over a hold of seconds, the gateway's background work (refreshes, queue polls)
            # would weigh on a few streams' CPU: it is taken out at its idle rate.
            if row.cpu_ms_per_req is not None and row.requests and row.rps:
                busy = row.cpu_ms_per_req - idle * 1000 / row.rps
                row.extra["idle_cpu_ms_per_s"] = idle * 1000
                row.cpu_ms_per_req = max(0.0, busy)
            return row

        async def before(_: float) -> None:
            # A chat stream is its deltas plus four events (role, finish, usage, [DONE]).
            await self.upstream.shape(chunks=max(1, round(hold / delay) - 3), delay=delay)

        await self._points(targets, points, measure, before)
        title = f"Streams open at once ({hold:g} s each)"
        self.curves.append(Curve(title, "", points, "streams open at once"))

    async def _chains(self, targets: list[Target], watch: RedisWatch) -> None:
        """A Responses call continuing a stored conversation of N turns (translated to
        Anthropic Messages, so that each turn gets its own id), beside a plain Messages call
        straight to the fake."""
        turns = self.plan.turns
        points = {f"previous_response_id, {n} turn{'s' * (n != 1)}": float(n) for n in turns}
        await self.upstream.shape(chunks=20, delay=0.0)
        ids: dict[str, dict[int, str]] = {}
        for target in targets[1:]:
            ids[target.label] = await _build_chain(target, max(turns))

        async def measure(name: str, target: Target) -> Row:
            if target.label == "direct":
                plain = anthropic_direct(self.upstream)
                return await closed_row(name, plain, watch, 1, self.plan.seconds)
            body = _responses_body(ids[target.label][int(points[name])], store=False)
            chained = replace(target, path="/v1/responses", body=body)
            await closed_row("warm-up", chained, None, 1, 0.5)
            return await closed_row(name, chained, watch, 1, self.plan.seconds)

        async def before(_: float) -> None:
            return None

        await self._points(targets, points, measure, before)
        title = "`previous_response_id` chain length"
        self.curves.append(Curve(title, "turn", points, "turns in the chain"))

    async def _keys(self, targets: list[Target], watch: RedisWatch) -> None:
        """Calls with keys drawn from a store of 100 to 1,000,000 keys, each of its own account
        (so that a call needs its key, account and branch tree), spread over thousands of keys:
        the identity cache keeps an entry a second, so a key not called within the last second
        is read from the store again."""
        plan = self.plan
        title = "Keys and accounts in the store"
        points = {f"{n:,} keys and accounts": float(n) for n in plan.keys}
        await self.upstream.shape(chunks=20, delay=0.0)
        salt = secrets.token_hex(8)
        made = {store: Keys(store, salt) for store in self.gateways}
        notes = self.notes.setdefault(title, [])
        notes += [
            "",
            "| point | store | keys called | made in s | list 100 keys ms | Redis used MB |",
            "|" + " --- |" * 6,
        ]
        if plan.admin_keys < max(plan.keys):
            stop = (
                f"memory:// stops at {plan.admin_keys:,} keys: it has no bulk path (its records "
                "live in the gateway's process), so each key is made through the admin API "
                "(four calls); Redis is written by pipelines."
            )
            print(stop, flush=True)
            notes.insert(0, stop)
        for name, x in points.items():
            n = int(x)
            for target in targets:
                keys = made.get(target.label)
                if keys is None:  # direct: the same call, no key
                    print(f"{name}: {target.label}", flush=True)
                    await closed_row("warm-up", target, None, 1, 0.5)
                    self.rows.append(await closed_row(name, target, watch, 1, plan.seconds))
                    continue
                if target.label == "memory://" and n > plan.admin_keys:
                    continue
                took = await self._fill(target.label, keys, n)
                print(f"{name}: {target.label}", flush=True)
                row = await self._spread(name, target, keys, n, watch)
                listing = await _list_keys_ms(self.gateways[target.label])
                used = _redis_used_mb(self.redis.url) if target.label == "redis://" else None
                row.extra.update(list_keys_ms=listing, fill_seconds=took, redis_used_mb=used)
                self.rows.append(row)
                called = row.extra["keys_called"]
                notes.append(
                    f"| {name} | {target.label} | {called:,} | {took:.1f} | {listing:.1f} | "
                    f"{_f(used, '{:.0f}')} |"
                )
        self.curves.append(Curve(title, "", points, "keys (one account each) in the store"))

    async def _fill(self, store: str, keys: Keys, n: int) -> float:
        """Make keys up to `n` in `store`, printing progress; the seconds it took."""
        if keys.made >= n:
            return 0.0
        start = time.perf_counter()
        first = keys.made

        def progress(count: int) -> None:
            if count == n or count % 100_000 == 0 or store == "memory://":
                took = time.perf_counter() - start
                rate = (count - first) / took if took > 0 else 0.0
                print(
                    f"  {store} {count:,} of {n:,} keys made ({took:.1f} s, {rate:,.0f} keys/s)",
                    flush=True,
                )

        if store == "redis://":
            await fill_redis(self.redis.url, keys, n, progress)
        else:
            await fill_admin(self.gateways[store], keys, n, progress)
        return time.perf_counter() - start

    async def _spread(
        self, name: str, target: Target, keys: Keys, n: int, watch: RedisWatch
    ) -> Row:
        """Calls over up to `plan.spread` keys drawn at random from the `n` made (a warm-up
        over others first, where there are others)."""
        draw_from = random.Random(n)
        called = draw_from.sample(range(n), min(n, self.plan.spread))
        warm = draw_from.sample(range(n), min(n, 256))

        def requests(indices: list[int]) -> list[bytes]:
            out = []
            for i in indices:
                headers = {**target.headers, "Authorization": f"Bearer {keys.secret(i)}"}
                out.append(replace(target, headers=headers).raw(False))
            return out

        await spread_row("warm-up", target, requests(warm), None, 1, 0.5)
        row = await spread_row(name, target, requests(called), watch, 1, self.plan.seconds)
        row.extra["keys_called"] = len(called)
        return row

    def panels(self) -> list[Panel]:
        """Each curve's points for the chart, by store."""
        out = []
        for curve in self.curves:
            series: dict[str, list[Point]] = {}
            marked: set[tuple[str, float]] = set()
            for store, _, x, row, cpu, growth in _walk(self.rows, curve):
                series.setdefault(store, []).append((x, finite(cpu), finite(row.added_p50)))
                if "super-linear" in growth:
                    marked.add((store, x))
            out.append(Panel(curve.title.replace("`", ""), curve.axis, series, marked))
        return out

    def markdown(self) -> str:
        """The report: one table per curve."""
        m = self.meta["machine"]
        load = ", ".join(f"{x:.2f}" for x in m["load_before"])
        after = ", ".join(f"{x:.2f}" for x in m.get("load_after", ()))
        lines = [
            "# How the gateway's cost grows",
            "",
            f"- machine: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, commit "
            f"{m['commit']}; load average before: {load}; after: {after}",
            "- one gateway process per store (memory://, Redis), API key + branch, a per-key "
            "request quota, INFO logs; the fake upstream answers 1 KiB bodies, streams without "
            "pauses (streams held open: one event every 0.25 s)",
            "",
        ]
        for curve in self.curves:
            lines += [f"## {curve.title}", "", curve_table(self.rows, curve), ""]
            if curve.title in self.notes:
                lines += [*self.notes[curve.title], ""]
        lines += [
            "Added p50 / p99: the gateway's latency (for streams: time to the last byte) minus "
            "direct's at the same point; TTFB likewise for streams. CPU per call is the "
            "gateway's (plus redis-server's on Redis). The marginal CPU is the CPU per call "
            "added since the previous point, per unit of work added; **super-linear** marks a "
            f"step whose marginal CPU is over {SUPERLINEAR:g} times the previous step's while "
            "the CPU per call at least doubled, or, where every call does the same work "
            f"(streams open at once), a CPU per call over {SUPERLINEAR:g} times the first "
            "point's. On the keys curve, a point's calls go round over its \"keys called\" "
            "(drawn at random): with fewer keys than a second's calls, most calls find their "
            "key in the gateway's one-second identity cache; with more, none does.",
        ]
        return "\n".join(lines) + "\n"

    def write(self, text: str) -> Path:
        """Save JSON and Markdown under results/; returns the Markdown path."""
        data = {"meta": self.meta, "rows": to_json(self.rows)}
        return save(RESULTS, "scaling", "scaling-latest", data, text)


def _responses_body(previous: str | None, store: bool) -> bytes:
    body: dict[str, Any] = {"model": ANTHROPIC_MODEL, "input": PROMPT, "store": store}
    if previous is not None:
        body["previous_response_id"] = previous
    return orjson.dumps(body)


async def _build_chain(target: Target, turns: int) -> dict[int, str]:
    """A stored conversation of `turns` turns through the gateway: the id after each turn."""
    url = f"http://{target.host}:{target.port}/v1/responses"
    headers = {**target.headers, "Content-Type": "application/json"}
    ids: dict[int, str] = {}
    previous: str | None = None
    async with aiohttp.ClientSession() as http:
        for turn in range(1, turns + 1):
            body = _responses_body(previous, store=True)
            async with http.post(url, data=body, headers=headers) as resp:
                answer = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"turn {turn} of a chain: {resp.status} {answer}")
            previous = ids[turn] = str(answer["id"])
    return ids


async def _idle_cpu(target: Target, seconds: float = 2.0) -> float:
    """CPU seconds per second that `target`'s processes spend while nothing is sent."""
    if target.pids is None:
        return 0.0
    pids = target.pids()
    before = procstat.cpu_seconds(pids)
    await asyncio.sleep(seconds)
    return (procstat.cpu_seconds(pids) - before) / seconds


async def _list_keys_ms(gateway: Gateway) -> float:
    """The admin API's first page of 100 keys of all accounts, median of three, in ms."""
    url = f"{gateway.url}/admin/v1/keys?limit=100"
    took = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
        for _ in range(3):
            start = time.perf_counter()
            async with http.get(url) as resp:
                await resp.read()
                resp.raise_for_status()
            took.append((time.perf_counter() - start) * 1000)
    return statistics.median(took)


def _redis_used_mb(url: str) -> float:
    """redis-server's used_memory, MB."""
    client = redis.Redis.from_url(url)
    try:
        return float(client.info("memory")["used_memory"]) / (1024 * 1024)
    finally:
        client.close()


def _cpu(row: Row) -> float | None:
    if row.cpu_ms_per_req is None:
        return None
    return row.cpu_ms_per_req + (row.redis_cpu_ms_per_req or 0.0)


def _f(value: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if value is None else fmt.format(value)


def _growth(curve: Curve, points: list[tuple[float, float]]) -> str:
    """The last point's growth column: marginal CPU per unit of work, or (when each call does
    the same work) the CPU per call against the first point's; marked when super-linear."""
    (x, cpu), first = points[-1], points[0]
    if not curve.unit:
        ratio = cpu / first[1] if first[1] else 0.0
        return f"{ratio:.2f}" + (" **super-linear**" if ratio > SUPERLINEAR else "")
    if len(points) < 2 or x <= points[-2][0]:
        return "—"
    marginal = (cpu - points[-2][1]) * 1000 / (x - points[-2][0])
    text = f"{marginal:.2f}"
    if len(points) >= 3:
        (x1, c1), (x0, c0) = points[-2], points[-3]
        last = (c1 - c0) * 1000 / (x1 - x0) if x1 > x0 else 0.0
        if last > 0 and marginal > SUPERLINEAR * last and cpu > 2 * c1:
            text += " **super-linear**"
    return text


def _walk(
    rows: list[Row], curve: Curve
) -> Iterator[tuple[str, str, float, Row, float | None, str]]:
    """Each measured point of a curve by store: (store, point, x, row, CPU per call, growth
    column)."""
    by = {(r.scenario, r.target): r for r in rows if not r.note}
    for store in STORES:
        seen: list[tuple[float, float]] = []  # (x, CPU per call) of the points so far
        for name, x in curve.points.items():
            r = by.get((name, store))
            if r is None:
                continue
            cpu = _cpu(r)
            if cpu is not None:
                seen.append((x, cpu))
            yield store, name, x, r, cpu, _growth(curve, seen) if cpu is not None else "—"


def curve_table(rows: list[Row], curve: Curve) -> str:
    """One curve as Markdown: a line per point and store."""
    growth = f"marginal CPU µs per {curve.unit}" if curve.unit else "CPU per call / first point's"
    lines = [
        "| point | store | direct p50 ms | added p50 / p99 ms | added TTFB p50 ms | "
        f"CPU ms/call | {growth} | RSS MB | errors |",
        "|" + " --- |" * 9,
    ]
    direct = {r.scenario: r for r in rows if r.target == "direct" and not r.note}
    for store, name, _, r, cpu, grown in _walk(rows, curve):
        d = direct.get(name)
        added = f"{_f(r.added_p50)} / {_f(r.added_p99)}"
        lines.append(
            f"| {name} | {store} | {_f(d.p50 if d else None)} | {added} | "
            f"{_f(r.added_ttfb_p50)} | {_f(cpu, '{:.3f}')} | {grown} | "
            f"{_f(r.rss_mb, '{:.0f}')} | {r.errors} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Entry point of `make bench-scaling`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small points, short runs")
    args = parser.parse_args()
    scaling = Scaling(Plan.quick() if args.quick else Plan())
    install_uvloop()
    asyncio.run(_main(scaling))
    text = scaling.markdown()
    path = scaling.write(text)
    print(text)
    print(f"(written to {path} and {path.with_suffix('.json')})")
    m = scaling.meta["machine"]
    caption = (
        f"edge: how cost grows, one dimension at a time (commit {m['commit']}, "
        f"{m['cpus']} CPUs, {time.strftime('%Y-%m-%d')}); ringed: a super-linear step"
    )
    chart = draw(scaling.panels(), RESULTS / "scaling.png", caption)
    if chart is not None:
        print(f"(chart: {chart})")


async def _main(scaling: Scaling) -> None:
    # SIGTERM stops the run like Ctrl-C does: the servers are stopped on the way out.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await scaling.run()


if __name__ == "__main__":
    main()
