"""The asyncio load generator: open-loop rates, closed-loop streams, and held slow streams."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tests.bench.httpclient import Connection, Exchange, ProtocolError


@dataclass(slots=True)
class Outcome:
    """What a load run observed."""

    exchanges: list[Exchange] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    late: int = 0  # open loop: sends more than 1 ms behind schedule
    error_samples: list[str] = field(default_factory=list)

    def fail(self, why: str) -> None:
        """Count one failed request."""
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(why)


Check = Callable[[Exchange], bool]


def ok_status(ex: Exchange) -> bool:
    """A 2xx answer."""
    return 200 <= ex.status < 300


def stream_ended(ex: Exchange) -> bool:
    """A 2xx stream that reached its API's terminal event (not an error event)."""
    tail = ex.tail
    return ok_status(ex) and (
        b"data: [DONE]" in tail
        or b"event: message_stop" in tail
        or b"event: response.completed" in tail
    )


async def _one(conn: Connection, raw: bytes, out: Outcome, check: Check, timeout: float) -> None:
    try:
        ex = await conn.send(raw, timeout)
    except (ProtocolError, OSError, TimeoutError) as exc:
        conn.close()
        out.fail(type(exc).__name__ + ": " + str(exc)[:120])
        return
    if check(ex):
        out.exchanges.append(ex)
    else:
        out.fail(f"status {ex.status}, ends {ex.tail[-40:]!r}")


async def open_loop(
    host: str,
    port: int,
    raw: bytes,
    rate: float,
    duration: float,
    check: Check = ok_status,
    drain: float = 15.0,
) -> Outcome:
    """Send at a fixed rate whatever the answers do; a request needing a connection gets one."""
    out = Outcome()
    idle: list[Connection] = [
        await Connection(host, port).open() for _ in range(max(2, int(rate / 50)))
    ]
    tasks: set[asyncio.Task[None]] = set()

    async def fire() -> None:
        conn = idle.pop() if idle else Connection(host, port)
        await _one(conn, raw, out, check, 30.0)
        if conn.usable:
            idle.append(conn)

    start = time.perf_counter()
    total = int(rate * duration)
    for i in range(total):
        at = start + i / rate
        wait = at - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        if time.perf_counter() - at > 0.001:
            out.late += 1
        task = asyncio.get_running_loop().create_task(fire())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        # Bounded: an overloaded server's backlog is cut off after `drain` seconds.
        _, stuck = await asyncio.wait(tasks, timeout=drain)
        for task in stuck:
            task.cancel()
            out.fail("not answered within the drain time")
    out.elapsed = time.perf_counter() - start
    for conn in idle:
        conn.close()
    return out


async def closed_loop(
    host: str,
    port: int,
    raw: bytes,
    concurrency: int,
    duration: float,
    check: Check = ok_status,
) -> Outcome:
    """`concurrency` connections, each sending its next request when the last one ends."""
    out = Outcome()
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        conn = Connection(host, port)
        while time.perf_counter() < deadline:
            await _one(conn, raw, out, check, 30.0)
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    out.elapsed = time.perf_counter() - start
    return out


async def rotating_loop(
    host: str,
    port: int,
    raws: Sequence[bytes],
    concurrency: int,
    duration: float,
    check: Check = ok_status,
) -> Outcome:
    """Like `closed_loop`, but each request is the next of `raws` in turn (e.g. one per API
    key, so that calls spread over many keys instead of one hot one)."""
    out = Outcome()
    deadline = time.perf_counter() + duration
    turn = itertools.cycle(raws)

    async def worker() -> None:
        conn = Connection(host, port)
        while time.perf_counter() < deadline:
            await _one(conn, next(turn), out, check, 30.0)
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    out.elapsed = time.perf_counter() - start
    return out


async def hold_streams(
    host: str,
    port: int,
    raw: bytes,
    count: int,
    timeout: float,
    sample: Callable[[], None],
    ramp_batch: int = 100,
) -> Outcome:
    """Open `count` streams at once (in batches of `ramp_batch`), read each to its end.

    `sample` is called every half second while streams are open (to watch the server's RSS).
    """
    out = Outcome()
    conns: list[Connection] = []

    async def one() -> None:
        conn = Connection(host, port)
        conns.append(conn)
        await _one(conn, raw, out, stream_ended, timeout)
        conn.close()

    start = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for i in range(count):
        tasks.append(asyncio.get_running_loop().create_task(one()))
        if (i + 1) % ramp_batch == 0:
            await asyncio.sleep(0.05)
    pending = set(tasks)
    while pending:
        sample()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    out.elapsed = time.perf_counter() - start
    return out
