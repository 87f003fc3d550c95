"""Systems side by side (direct, bare relay, edge, peers): one line each, from one run."""

from __future__ import annotations

from dataclasses import dataclass

from tests.bench.report import RELAY, Row, find_row

OPEN_RATE = 50  # requests per second of the open-loop latency scenario
HEADER = (
    "| system | c=50 req/s | % of direct | % of bare relay | added p50 / p99 at "
    f"{OPEN_RATE} req/s | added TTFB p50 | CPU ms/req |"
)


@dataclass(frozen=True, slots=True)
class Scenarios:
    """The names of the three scenarios the comparison reads."""

    c50: str
    open50: str
    stream10: str


def saturated(row: Row) -> bool:
    """The open-loop rate was not kept up: fewer answers per second than were sent, or errors."""
    return row.errors > 0 or row.rps < 0.95 * OPEN_RATE


def _pct(part: float, whole: Row | None) -> str:
    if whole is None or not whole.rps:
        return "—"
    share = part / whole.rps
    digits = 2 if share < 0.01 else 1 if share < 0.1 else 0
    return f"{share * 100:.{digits}f} %"


def _cpu(row: Row | None) -> str:
    if row is None or row.cpu_ms_per_req is None:
        return "—"
    cpu = f"{row.cpu_ms_per_req:.2f}"
    if row.redis_cpu_ms_per_req is not None:
        cpu += f" + {row.redis_cpu_ms_per_req:.2f} Redis"
    return cpu


def _latency(row: Row | None) -> str:
    if row is None or row.added_p50 is None or row.added_p99 is None:
        return "—"
    if saturated(row):
        return f"saturated below {OPEN_RATE} req/s"
    return f"{row.added_p50:+.2f} / {row.added_p99:+.2f} ms"


def _ttfb(row: Row | None) -> str:
    if row is None or row.added_ttfb_p50 is None:
        return "—"
    return f"{row.added_ttfb_p50:+.2f} ms"


def system_table(rows: list[Row], names: Scenarios, systems: list[tuple[str, str]]) -> str:
    """One Markdown line per system: `systems` pairs each row label with the name shown.

    Added figures are the system's minus direct's in the same run; CPU is per request at c=50
    (the fake upstream's own on the direct line), with redis-server's shown apart.
    """
    direct = find_row(rows, names.c50, "direct")
    relay = find_row(rows, names.c50, RELAY)
    lines = [HEADER, "|" + " --- |" * 7]
    for label, shown in systems:
        c50 = find_row(rows, names.c50, label)
        if c50 is None:
            why = next((r.note for r in rows if r.target == label and r.note), "not measured")
            lines.append(f"| {shown} | {why} |" + " |" * 5)
            continue
        of_direct = "100 %" if label == "direct" else _pct(c50.rps, direct)
        of_relay = {"direct": "—", RELAY: "100 %"}.get(label) or _pct(c50.rps, relay)
        lines.append(
            f"| {shown} | {c50.rps:,.0f} | {of_direct} | {of_relay} | "
            f"{_latency(find_row(rows, names.open50, label))} | "
            f"{_ttfb(find_row(rows, names.stream10, label))} | {_cpu(c50)} |"
        )
    return "\n".join(lines)
