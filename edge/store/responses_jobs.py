"""The queue of background runs: in-process on `memory://`, a Redis Stream consumer group on Redis.

On Redis a taken job stays pending for its consumer until it is done; the consumer renews it
while it runs. A job left idle longer than the lease (its process died) is claimed by the next
worker that asks, and marked `taken_over` so the worker can decide what a half-run job needs.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import ResponseError

from edge.store.clients import Client, drop_all
from edge.store.driver import DriverBacked

JOBS = "edge:resp:jobs"
GROUP = "edge-workers"
# A released job's idle time: longer than any lease, so any worker's takeover claims it now.
RELEASED_IDLE_MS = 10**9


@dataclass(frozen=True, slots=True)
class Job:
    """One background run to execute: which response, and the queue's handle on it."""

    account: str
    response_id: str
    token: str = ""  # the queue's own id for the job
    taken_over: bool = False  # claimed from a consumer that stopped renewing it


class JobQueue(Protocol):
    """Background runs waiting for a worker."""

    async def push(self, account: str, response_id: str) -> None:
        """Queue a run."""

    async def take(self, wait: float, lease: float) -> Job | None:
        """The next job (a stale one first), waiting up to `wait` seconds; None when idle."""

    async def renew(self, job: Job) -> None:
        """Keep a running job from being taken over."""

    async def done(self, job: Job) -> None:
        """Remove a finished job."""

    async def release(self, job: Job) -> None:
        """Give a job back unfinished (shutdown), so another worker takes it now."""

    async def wake(self) -> None:
        """Make a waiting `take` return now, and every later one at once (shutdown)."""


class MemoryJobs:
    """One process: an asyncio queue (nothing outlives the process, so there is no lease)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._woken = asyncio.Event()

    async def push(self, account: str, response_id: str) -> None:
        """Queue a run."""
        self._queue.put_nowait(Job(account, response_id))

    async def take(self, wait: float, lease: float) -> Job | None:
        """The next job."""
        if self._woken.is_set():
            return None
        getter = asyncio.ensure_future(self._queue.get())
        waker = asyncio.ensure_future(self._woken.wait())
        await asyncio.wait((getter, waker), timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        waker.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()  # safe: a cancelled get leaves the item in the queue
        return None

    async def renew(self, job: Job) -> None:
        """Nothing to renew in one process."""

    async def done(self, job: Job) -> None:
        """Nothing to acknowledge in one process."""

    async def release(self, job: Job) -> None:
        """Queue the job again."""
        self._queue.put_nowait(Job(job.account, job.response_id))

    async def wake(self) -> None:
        """Release a waiting take."""
        self._woken.set()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _job(entry: Any, taken_over: bool) -> Job | None:
    token, fields = entry
    if not fields:  # the entry was deleted after it was delivered
        return None
    data = {_text(k): _text(v) for k, v in fields.items()}
    return Job(data["account"], data["id"], _text(token), taken_over)


class RedisJobs(DriverBacked):
    """A Redis Stream read by one consumer group; every process is one consumer."""

    def __init__(self, redis: Client, blocking: Client) -> None:
        self._r = redis
        self._blocking = blocking  # a client whose socket timeout outlasts a blocking read
        self._consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._group_ready = False
        self._woken = False

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the stream's start: jobs queued before any worker existed are still run.
            await self._r.xgroup_create(JOBS, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def push(self, account: str, response_id: str) -> None:
        """Queue a run."""
        await self._r.xadd(JOBS, {"account": account, "id": response_id})

    async def take(self, wait: float, lease: float) -> Job | None:
        """A job idle past its lease first, else a new one."""
        if self._woken:
            return None
        await self._ensure_group()
        try:
            return await self._take(wait, lease)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._group_ready = False  # Redis lost its data (a restart): create it again
            raise

    async def _take(self, wait: float, lease: float) -> Job | None:
        claimed: Any = await self._r.xautoclaim(
            JOBS, GROUP, self._consumer, min_idle_time=int(lease * 1000), start_id="0-0", count=1
        )
        for entry in claimed[1]:
            job = _job(entry, taken_over=True)
            if job is not None:
                return job
        for deleted in claimed[2] if len(claimed) > 2 else []:
            await self._r.xack(JOBS, GROUP, deleted)
        if self._woken:
            return None
        replies: Any = await self._blocking.xreadgroup(
            GROUP, self._consumer, {JOBS: ">"}, count=1, block=max(1, int(wait * 1000))
        )
        for _stream, entries in replies or []:
            for entry in entries:
                job = _job(entry, taken_over=False)
                if job is not None:
                    return job
        return None

    async def renew(self, job: Job) -> None:
        """Reset the job's idle time (claiming it again for this consumer)."""
        await self._r.xclaim(JOBS, GROUP, self._consumer, 0, [job.token], justid=True)

    async def done(self, job: Job) -> None:
        """Acknowledge and delete the job."""
        # Not a MULTI (a cluster pipeline has none): a deleted entry left pending is acked by
        # the next take, which XAUTOCLAIM tells of it.
        pipe = self._r.pipeline(transaction=False)
        pipe.xack(JOBS, GROUP, job.token)
        pipe.xdel(JOBS, job.token)
        await pipe.execute()

    async def release(self, job: Job) -> None:
        """Mark the job idle far past any lease: the next worker that asks claims it at once."""
        await self._r.xclaim(
            JOBS, GROUP, self._consumer, 0, [job.token], idle=RELEASED_IDLE_MS, justid=True
        )

    async def wake(self) -> None:
        """Close the blocking connections: a blocked read fails at once instead of being
        cancelled (a cancelled Redis call can leave its connection unusable)."""
        self._woken = True
        await drop_all(self._blocking)
