"""Rows of results, the comparison with the direct runs, the targets, and the Markdown."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

RELAY = "bare relay"  # the label of the bare aiohttp relay's rows


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass(slots=True)
class Row:
    """One scenario run against one target. Times in milliseconds."""

    scenario: str
    target: str  # direct | bare relay | gateway | gateway x2 | a peer's name
    requests: int = 0
    errors: int = 0
    rps: float = 0.0
    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    ttfb_p50: float | None = None
    ttfb_p99: float | None = None
    cpu_ms_per_req: float | None = None
    rss_mb: float | None = None
    redis_cmds_per_req: float | None = None
    redis_rtt_per_req: float | None = None
    redis_cpu_ms_per_req: float | None = None  # redis-server's own CPU
    redis_commands: dict[str, float] = field(default_factory=dict)
    added_p50: float | None = None
    added_p99: float | None = None
    added_ttfb_p50: float | None = None
    rps_ratio: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_gateway(self) -> bool:
        """Measured through the gateway."""
        return self.target != "direct"


def compare(rows: list[Row]) -> None:
    """Fill each gateway row's added latency and throughput ratio from its scenario's direct row."""
    direct = {r.scenario: r for r in rows if r.target == "direct" and not r.note}
    for row in rows:
        base = direct.get(row.scenario)
        if not row.is_gateway or base is None or row.note:
            continue
        row.added_p50 = row.p50 - base.p50
        row.added_p99 = row.p99 - base.p99
        if row.ttfb_p50 is not None and base.ttfb_p50 is not None:
            row.added_ttfb_p50 = row.ttfb_p50 - base.ttfb_p50
        row.rps_ratio = row.rps / base.rps if base.rps else None


def _f(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


HEADER = (
    "| scenario | path | req/s | p50 ms | p90 ms | p99 ms | added p50 / p99 ms | "
    "TTFB p50 ms (added) | CPU ms/req | RSS MB | Redis cmds (RTs)/req | Redis CPU ms/req | "
    "errors |"
)


def table(rows: list[Row]) -> str:
    """The Markdown results table."""
    lines = [HEADER, "|" + " --- |" * 13]
    for r in rows:
        if r.note:
            lines.append(f"| {r.scenario} | {r.target} | {r.note} |" + " |" * 10)
            continue
        added = f"{_f(r.added_p50)} / {_f(r.added_p99)}" if r.added_p50 is not None else "—"
        ttfb = _f(r.ttfb_p50)
        if r.added_ttfb_p50 is not None:
            ttfb += f" ({r.added_ttfb_p50:+.2f})"
        ratio = f" ({r.rps_ratio:.0%})" if r.rps_ratio is not None else ""
        rate = f"{r.rps:,.0f}{ratio}"
        if "open_streams" in r.extra:
            rate = f"{r.extra['open_streams']} open"
        redis = (
            f"{r.redis_cmds_per_req:.2f} ({r.redis_rtt_per_req:.2f})"
            if r.redis_cmds_per_req is not None and r.redis_rtt_per_req is not None
            else "—"
        )
        lines.append(
            f"| {r.scenario} | {r.target} | {rate} | {_f(r.p50)} | {_f(r.p90)} | "
            f"{_f(r.p99)} | {added} | {ttfb} | {_f(r.cpu_ms_per_req, 3)} | {_f(r.rss_mb, 0)} | "
            f"{redis} | {_f(r.redis_cpu_ms_per_req, 3)} | {r.errors} |"
        )
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One target of the performance goals and how this run did against it."""

    goal: str
    measured: str
    met: bool | None  # None: not measured in this run


def find_row(rows: list[Row], scenario: str, target: str = "gateway") -> Row | None:
    """The measured row of `scenario` for `target`, if any."""
    for r in rows:
        if r.scenario == scenario and r.target == target and not r.note:
            return r
    return None


def _within(goal: str, r: Row | None, relay: Row | None, figure: str, slack: float) -> Verdict:
    """`figure` of the gateway's row at most the relay's plus `slack` ms."""
    mine = None if r is None else getattr(r, figure)
    floor = None if relay is None else getattr(relay, figure)
    if mine is None or floor is None:
        return Verdict(goal, "not measured", None)
    return Verdict(goal, f"{mine:+.2f} ms (relay {floor:+.2f} ms)", mine <= floor + slack)


def verdicts(rows: list[Row], scenarios: dict[str, str]) -> list[Verdict]:
    """The performance targets, relative to the bare relay of the same run, checked against
    this run. `scenarios` maps roles to names."""
    out: list[Verdict] = []
    gw, relay = find_row(rows, scenarios["c50"]), find_row(rows, scenarios["c50"], RELAY)
    goal = "throughput at c=50, one process: ≥ 70% of the bare relay"
    if gw is None or relay is None or not relay.rps:
        out.append(Verdict(goal, "not measured", None))
    else:
        share = gw.rps / relay.rps
        out.append(
            Verdict(goal, f"{share:.0%} ({gw.rps:,.0f} vs {relay.rps:,.0f} req/s)", share >= 0.7)
        )
    x2 = find_row(rows, scenarios["c50"], "gateway x2")
    goal = "throughput at c=50, `--workers 2`: ≥ 1.6 times one process"
    if gw is None or x2 is None or not gw.rps:
        out.append(Verdict(goal, "not measured", None))
    else:
        out.append(Verdict(goal, f"{x2.rps / gw.rps:.2f} times", x2.rps / gw.rps >= 1.6))
    r, floor = find_row(rows, scenarios["open50"]), find_row(rows, scenarios["open50"], RELAY)
    out.append(
        _within("added latency at 50 req/s: p50 ≤ relay + 0.5 ms", r, floor, "added_p50", 0.5)
    )
    out.append(_within("added latency at 50 req/s: p99 ≤ relay + 2 ms", r, floor, "added_p99", 2.0))
    r, floor = find_row(rows, scenarios["stream10"]), find_row(rows, scenarios["stream10"], RELAY)
    out.append(
        _within("added TTFB p50 at 10 streams: ≤ relay + 0.5 ms", r, floor, "added_ttfb_p50", 0.5)
    )
    goal = "CPU per call at c=50, Redis's included: ≤ 1.5 times the bare relay's"
    if gw is None or relay is None or gw.cpu_ms_per_req is None or not relay.cpu_ms_per_req:
        out.append(Verdict(goal, "not measured", None))
    else:
        mine = gw.cpu_ms_per_req + (gw.redis_cpu_ms_per_req or 0.0)
        ratio = mine / relay.cpu_ms_per_req
        out.append(
            Verdict(
                goal,
                f"{ratio:.2f} times ({mine:.3f} vs {relay.cpu_ms_per_req:.3f} ms)",
                ratio <= 1.5,
            )
        )
    r = find_row(rows, scenarios["hold"])
    if r is not None:
        peak = r.extra.get("peak_rss_mb", r.rss_mb or 0.0)
        out.append(
            Verdict(
                "slow streams held: no error, gateway RSS ≤ 250 MB",
                f"{r.errors} errors, peak RSS {peak:.0f} MB "
                f"({r.extra.get('kb_per_stream', 0):.0f} KB per open stream)",
                r.errors == 0 and peak <= 250,
            )
        )
    r = find_row(rows, scenarios["open50"])
    if r is not None and r.redis_rtt_per_req is not None:
        out.append(
            Verdict(
                "Redis round trips per request ≤ 2",
                f"{r.redis_rtt_per_req:.2f} ({r.redis_cmds_per_req:.2f} commands)",
                r.redis_rtt_per_req <= 2.0,
            )
        )
    return out


def verdict_table(items: list[Verdict]) -> str:
    """The targets as Markdown."""
    lines = ["| target | measured | met |", "| --- | --- | --- |"]
    marks = {True: "yes", False: "**no**", None: "—"}
    lines += [f"| {v.goal} | {v.measured} | {marks[v.met]} |" for v in items]
    return "\n".join(lines)


def to_json(rows: list[Row]) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts."""
    return [asdict(r) for r in rows]


def save(results: Path, prefix: str, latest: str, data: dict[str, Any], text: str) -> Path:
    """Write a run's JSON and Markdown as `<prefix>-<time>` and as `<latest>` (overwritten
    each run) under `results`; returns the latest Markdown's path."""
    results.mkdir(exist_ok=True)
    blob = orjson.dumps(data, option=orjson.OPT_INDENT_2)
    for name in (f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}", latest):
        (results / f"{name}.json").write_bytes(blob)
        (results / f"{name}.md").write_text(text)
    return results / f"{latest}.md"
