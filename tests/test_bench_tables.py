"""The benchmark's tables from made-up rows: the systems side by side, the targets against the
bare relay, and the scaling curves' growth marks."""

from __future__ import annotations

from tests.bench.report import RELAY, Row, compare, verdicts
from tests.bench.run import SCENARIOS
from tests.bench.scaling import Curve, curve_table
from tests.bench.systems import Scenarios, system_table

NAMES = Scenarios(SCENARIOS["c50"], SCENARIOS["open50"], SCENARIOS["stream10"])


def _rows(target: str, rps: float, p50: float, p99: float, ttfb: float, cpu: float) -> list[Row]:
    return [
        Row(NAMES.c50, target, requests=1000, rps=rps, cpu_ms_per_req=cpu),
        Row(NAMES.open50, target, requests=500, rps=50.0, p50=p50, p99=p99),
        Row(NAMES.stream10, target, requests=80, rps=80.0, p50=120.0, ttfb_p50=ttfb),
    ]


def _run() -> list[Row]:
    rows = _rows("direct", 10_000, 0.2, 0.4, 0.2, 0.01)
    rows += _rows(RELAY, 2_000, 1.2, 2.0, 1.4, 0.5)
    rows += _rows("gateway", 1_500, 1.6, 4.2, 1.8, 0.6)
    rows[-3].redis_cpu_ms_per_req = 0.1
    rows += [Row(NAMES.c50, "slow peer", requests=100, rps=40.0, cpu_ms_per_req=20.0)]
    rows += [Row(NAMES.open50, "slow peer", requests=400, rps=35.0, p50=700.0, p99=900.0)]
    compare(rows)
    return rows


def test_each_system_is_one_line_with_its_shares_of_direct_and_of_the_relay() -> None:
    systems = [("direct", "direct"), (RELAY, "relay"), ("gateway", "edge")]
    systems += [("slow peer", "slow"), ("absent", "absent")]
    lines = system_table(_run(), NAMES, systems).splitlines()
    assert lines[2].startswith("| direct | 10,000 | 100 % | — |")
    assert lines[3].startswith("| relay | 2,000 | 20 % | 100 % | +1.00 / +1.60 ms | +1.20 ms |")
    assert (
        lines[4]
        == "| edge | 1,500 | 15 % | 75 % | +1.40 / +3.80 ms | +1.60 ms | 0.60 + 0.10 Redis |"
    )
    assert "| slow | 40 | 0.40 % | 2.0 % | saturated below 50 req/s |" in lines[5]
    assert lines[6].startswith("| absent | not measured |")


def test_the_targets_are_read_against_the_relay_of_the_same_run() -> None:
    found = {v.goal: v for v in verdicts(_run(), {**SCENARIOS, "hold": "held"})}
    throughput = found["throughput at c=50, one process: ≥ 70% of the bare relay"]
    assert throughput.met is True and throughput.measured.startswith("75%")
    assert found["added latency at 50 req/s: p50 ≤ relay + 0.5 ms"].met is True
    assert found["added latency at 50 req/s: p99 ≤ relay + 2 ms"].met is False  # +3.8 > +1.6 + 2
    assert found["added TTFB p50 at 10 streams: ≤ relay + 0.5 ms"].met is True
    cpu = found["CPU per call at c=50, Redis's included: ≤ 1.5 times the bare relay's"]
    assert cpu.met is True and cpu.measured.startswith("1.40 times")
    assert found["throughput at c=50, `--workers 2`: ≥ 1.6 times one process"].met is None


def test_a_step_costing_more_than_the_work_it_adds_is_marked() -> None:
    points = {"1": 1.0, "10": 10.0, "100": 100.0, "1000": 1000.0}
    # Linear until 100 (10 µs per unit), then 100 µs per unit added.
    cpu = {"1": 0.1, "10": 0.19, "100": 1.09, "1000": 91.09}
    rows = [Row(k, "memory://", requests=10, cpu_ms_per_req=v) for k, v in cpu.items()]
    lines = curve_table(rows, Curve("grows", "unit", points)).splitlines()
    assert "**super-linear**" not in "\n".join(lines[2:5])
    assert "| 100.00 **super-linear** |" in lines[5]
    # Where every call does the same work, the CPU per call itself must stay flat.
    flat = [Row(k, "redis://", requests=10, cpu_ms_per_req=1.0 + (k == "1000")) for k in cpu]
    marked = curve_table(flat, Curve("open", "", points)).splitlines()
    assert marked[-1].count("**super-linear**") == 1 and "| 2.00 **super-linear** |" in marked[-1]
