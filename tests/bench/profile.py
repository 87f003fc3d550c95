"""Where the gateway's time goes under load: py-spy samples of `edge serve` while wrk runs.

    python -m tests.bench.profile                 # non-streaming, c=50, 15 s
    python -m tests.bench.profile --stream        # streams at c=10

Writes py-spy's collapsed stacks to tests/bench/results/profile-*.txt and prints the
functions with the most samples, inclusive and self. Needs py-spy (the `test` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.bench.limits import raise_fd_limit
from tests.bench.loadgen import closed_loop, stream_ended
from tests.bench.run import RESULTS
from tests.bench.scenarios import Target
from tests.bench.stack import FakeUpstreamProcess, provision, start_gateway
from tests.bench.targets import gateway_target
from tests.bench.wrk import run_wrk
from tests.support.redis_server import RedisServer


def summarize(collapsed: Path, top: int = 30) -> str:
    """Sample shares from py-spy's raw (collapsed) output.

    - inclusive and self, per function;
    - per gateway function: samples whose deepest `edge/` or `policies/` frame it is (its own
      code plus the libraries it calls, without the gateway functions it calls);
    - per package of the innermost frame (aiohttp, redis, asyncio, ...).
    """
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    owner: Counter[str] = Counter()
    package: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] += n
        leaf[frames[-1]] += n
        ours = [f for f in frames if _is_gateway(f)]
        owner[ours[-1] if ours else "(no gateway frame: event loop, aiohttp server)"] += n
        package[_package(frames[-1])] += n
    if not total:
        return "no samples"

    def block(title: str, counts: Counter[str], limit: int) -> list[str]:
        rows = [f"  {100 * n / total:5.1f}%  {name}" for name, n in counts.most_common(limit)]
        return ["", title, *rows]

    out = [f"{total} samples (active threads only)"]
    out += block("by package of the innermost frame:", package, 15)
    out += block("by deepest gateway frame (own code + libraries it calls):", owner, top)
    out += block("inclusive:", inclusive, top)
    out += block("self:", leaf, top)
    return "\n".join(out)


_BOOT = ("(edge/cli.py)", "(edge/__main__.py)", "(edge/server.py)", "(edge/supervisor.py)")


def _is_gateway(short: str) -> bool:
    """A frame of the gateway's request path (not the start-up frames under the event loop)."""
    return ("(edge/" in short or "(policies/" in short) and not short.endswith(_BOOT)


def _package(short: str) -> str:
    where = short.rpartition(" (")[2].rstrip(")")
    head = where.split("/")[0]
    return head if "/" in where else where


def _short(frame: str) -> str:
    """`func (/abs/path/pkg/module.py:line)` -> `func (pkg/module.py)`, line numbers dropped."""
    name, _, where = frame.partition(" (")
    parts = Path(where.rstrip(")").rsplit(":", 1)[0]).parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    elif "edge" in parts or "policies" in parts:
        at = max(i for i, part in enumerate(parts) if part in ("edge", "policies"))
        parts = parts[at:]
    elif "python3.11" in parts:
        parts = parts[parts.index("python3.11") + 1 :]
    else:
        parts = parts[-2:]
    return f"{name} ({'/'.join(parts)})"


async def _load(args: argparse.Namespace, target: Target) -> None:
    if args.stream:
        raw = target.raw(True)
        await closed_loop(
            target.host, target.port, raw, args.connections, args.seconds, stream_ended
        )
    else:
        await asyncio.to_thread(
            run_wrk, target.url, target.headers, target.body, args.connections, args.seconds
        )


async def main_async(args: argparse.Namespace) -> Path:
    """Run the stack, load it and sample the gateway."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    raise_fd_limit()
    redis = RedisServer().start()
    upstream = FakeUpstreamProcess().start()
    RESULTS.mkdir(exist_ok=True)
    kind = "stream" if args.stream else "whole"
    out = RESULTS / f"profile-{kind}-c{args.connections}.txt"
    try:
        gw = start_gateway(redis.url, upstream.url, RESULTS / "gateway-profile.log", args.log_level)
        try:
            await provision(gw)
            if args.stream:
                await upstream.shape(chunks=20, delay=0.005)
            target = gateway_target(gw, "gateway")
            await asyncio.to_thread(run_wrk, target.url, target.headers, target.body, 20, 1)
            record = subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(gw.pid),
                    "--duration",
                    str(int(args.seconds)),
                    "--rate",
                    str(args.rate),
                    "--format",
                    "raw",
                    "--output",
                    str(out),
                    *(["--nonblocking"] if args.nonblocking else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            await asyncio.sleep(0.5)
            await _load(args, target)
            _, err = await asyncio.to_thread(record.communicate)
            if record.returncode != 0:
                raise RuntimeError(f"py-spy failed: {err.decode()[-500:]}")
        finally:
            gw.process.stop()
    finally:
        upstream.stop()
        redis.stop()
    return out


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stream", action="store_true", help="profile streams, not whole bodies")
    parser.add_argument("--connections", type=int, default=0, help="default: 50, or 10 streams")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--nonblocking", action="store_true", help="sample without pausing the gateway"
    )
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    args.connections = args.connections or (10 if args.stream else 50)
    out = asyncio.run(main_async(args))
    print(summarize(out, args.top))
    print(f"\n(collapsed stacks in {out}; `flamegraph.pl` or speedscope.app can draw them)")


if __name__ == "__main__":
    main()
