"""The background worker every gateway process runs: it takes queued responses and runs them.

Crash recovery is *fail, not restart*. A job whose process died (it stopped renewing its lease)
is claimed by another process once the lease expires. If the run had not started (still
`queued`), it is simply run. If it was `in_progress`, it is ended as `failed` with the error
code `worker_lost`: part of its output may already have been streamed to clients and billed by
the provider, and a silent second run could answer differently under the same id and sequence
numbers. The terminal status is a conditional append, so it is written exactly once however
many processes race for it.

A queued run whose key was revoked, or whose account was blocked, since it was queued is not
started: it ends `failed` (`key_revoked` / `account_blocked`) without calling the provider, and
its quota hold is released.

A process shutting down takes no new job and gives back at once any it took as the stop began.
Its runs go on until the shutdown deadline; one still running then is given back to the queue
if it has logged nothing since it began (another process starts it afresh at once), else
failed with `server_shutdown`, for the reason above, so waiting clients hear of it now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from aiohttp import web

from edge.appkeys import IDENTITY, LIFECYCLE, SETTINGS, STORE
from edge.errors import GatewayError
from edge.responses import runner
from edge.responses.state import (
    CANCEL_TOPIC,
    RunLog,
    RunStopped,
    encode_event,
    end_elsewhere,
    failed_events,
    settle,
    settle_from_log,
)
from edge.store import StoreUnavailable
from edge.store.responses import Change, StoredResponse
from edge.store.responses_jobs import Job

log = logging.getLogger(__name__)
WORKER_LOST = GatewayError(
    500,
    "The gateway process running this response stopped; the response was not restarted.",
    code="worker_lost",
)
SHUTDOWN = GatewayError(
    503, "The gateway shut down while this response was running.", code="server_shutdown"
)
KEY_REVOKED = GatewayError(
    401, "The API key that queued this response was revoked before it started.", code="key_revoked"
)
ACCOUNT_BLOCKED = GatewayError(
    403, "The account was blocked before this response started.", code="account_blocked"
)
_TAKE_WAIT = 1.0  # seconds one take() waits for a job, so stops and takeovers stay prompt


class Worker:
    """Runs background responses in this process, a bounded number at once."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        settings = app[SETTINGS]
        self.lease = settings.background_lease
        self._slots = asyncio.Semaphore(settings.background_concurrency)
        self._runs: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Begin taking jobs."""
        self.app[STORE].invalidation.subscribe(self._on_topic)
        self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="edge-bg")

    async def _stop_taking(self) -> None:
        self._stopping = True
        loop_task = self._loop_task
        if loop_task is None or loop_task.done():
            return
        with contextlib.suppress(StoreUnavailable):
            await self.app[STORE].jobs.wake()
        # Cancelling is the last resort: the loop normally ends by itself once woken.
        await asyncio.wait([loop_task], timeout=2.0)
        if not loop_task.done():
            loop_task.cancel()
            await asyncio.wait([loop_task], timeout=1.0)

    async def drain(self) -> None:
        """Drain hook (SIGTERM): take no new job, let the running ones finish.

        Whatever still runs when the shutdown deadline passes is failed by `stop`.
        """
        await self._stop_taking()
        while self._handlers:
            await asyncio.wait(list(self._handlers))

    async def stop(self) -> None:
        """Stop taking jobs; fail the running ones so their clients hear of it now."""
        await self._stop_taking()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers, timeout=5.0)

    def _on_topic(self, topic: str) -> None:
        if topic.startswith(CANCEL_TOPIC):
            account, _, response_id = topic.removeprefix(CANCEL_TOPIC).partition("/")
            task = self._runs.get((account, response_id))
            if task is not None:
                task.cancel()  # closes the upstream call; the canceller wrote the end

    async def _loop(self) -> None:
        jobs = self.app[STORE].jobs
        while not self._stopping:
            await self._slots.acquire()
            try:
                job = None if self._stopping else await jobs.take(_TAKE_WAIT, self.lease)
            except StoreUnavailable as exc:
                self._slots.release()
                if self._stopping:
                    return
                log.warning("background queue unavailable: %s", type(exc).__name__)
                await asyncio.sleep(_TAKE_WAIT)
                continue
            if job is None or self._stopping:
                self._slots.release()
                if job is not None:  # taken as the stop began: another process runs it now
                    with contextlib.suppress(StoreUnavailable):
                        await jobs.release(job)
                continue
            task = asyncio.get_running_loop().create_task(self._handle(job))
            self._handlers.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._handlers.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("background run failed", exc_info=task.exception())

    async def _handle(self, job: Job) -> None:
        try:
            if await self._process(job):
                await self.app[STORE].jobs.done(job)
        except StoreUnavailable as exc:
            # The job stays pending: once its lease expires a worker takes it over.
            log.warning("background run interrupted by the store: %s", type(exc).__name__)

    async def _process(self, job: Job) -> bool:
        """Run or settle one job; True when it needs no further attention."""
        store = self.app[STORE].responses
        record = await store.get(job.account, job.response_id)
        if record is None or record.job is None:
            return True
        if record.terminal:
            if job.taken_over and record.status == "cancelled":
                # Cancelled while it ran, and the process running it died, maybe before it
                # settled. One that settled and died before its job was done is not charged
                # twice: the quota store ignores a reservation's second settlement (for
                # SETTLED_KEEP_SECONDS, longer than a lease).
                await settle_from_log(self.app, record, closing=1)
            return True
        if job.taken_over and record.status == "in_progress":
            events, failed = failed_events(record.response, WORKER_LOST)
            if await end_elsewhere(self.app, record, "failed", events, failed, "in_progress"):
                await settle_from_log(self.app, record, closing=len(events))
            return True
        refusal = await self._refusal(record)
        if refusal is not None:
            events, failed = failed_events(record.response, refusal)
            if await end_elsewhere(self.app, record, "failed", events, failed, "queued"):
                await settle(self.app, record, None)  # never started: the hold is released
            return True
        attempt = secrets.token_hex(8)
        started = {**record.response, "status": "in_progress"}
        change = Change(expect="queued", status="in_progress", claim=attempt, response=started)
        appended = await store.append(
            record.account,
            record.id,
            [encode_event({"type": "response.in_progress", "response": started})],
            change,
            self.app[SETTINGS].responses_retention,
        )
        if appended < 0:
            return True  # cancelled, or another worker started it
        record.response, record.status, record.attempt = started, "in_progress", attempt
        return await self._run(job, record, RunLog(self.app, record, attempt))

    async def _refusal(self, record: StoredResponse) -> GatewayError | None:
        """Why a queued run may no longer start: its key revoked or its account blocked since
        it was queued (read as authentication reads them, through the identity cache). Keys
        and accounts are never deleted, only revoked and blocked: a record the store does not
        know was not revoked (the call that queued the run was authenticated)."""
        identity = self.app[IDENTITY]
        held = (record.job or {}).get("reservation")
        key_id = held.get("key_id") if isinstance(held, dict) else None
        if isinstance(key_id, str):
            key = await identity.key(key_id)
            if key is not None and key.revoked:
                return KEY_REVOKED
        account = await identity.account(record.account)
        if account is not None and account.blocked:
            return ACCOUNT_BLOCKED
        return None

    async def _run(self, job: Job, record: StoredResponse, run_log: RunLog) -> bool:
        key = (record.account, record.id)
        run_task = asyncio.get_running_loop().create_task(runner.run(self.app, run_log))
        self._runs[key] = run_task
        beat = asyncio.get_running_loop().create_task(self._heartbeat(job, run_log, run_task))
        try:
            await run_task
        except RunStopped:
            pass  # ended elsewhere
        except GatewayError as err:  # the model or its provider is not available here
            events, failed = failed_events(record.response, err)
            await run_log.end(events, failed, None)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the shutdown deadline
                with contextlib.suppress(StoreUnavailable, TimeoutError):
                    async with asyncio.timeout(2.0):
                        await asyncio.shield(self._give_up(job, record, run_log))
                raise
            # Else the run was stopped because it ended elsewhere.
        finally:
            beat.cancel()
            self._runs.pop(key, None)
        await run_log.stopped()  # a cancel or delete while it ran leaves the settling to it
        return True

    async def _give_up(self, job: Job, record: StoredResponse, run_log: RunLog) -> None:
        """At the shutdown deadline: a run that has logged nothing since it began goes back
        to the queue, for another process to start afresh now; one whose events may have
        reached clients is failed (`server_shutdown`), since a second run could contradict
        them."""
        jobs = self.app[STORE].jobs
        if run_log.emitted == 0:
            if await run_log.requeue():
                await jobs.release(job)
                log.info("background run requeued", extra={"fields": {"response": record.id}})
                return
        else:
            events, failed = failed_events(record.response, SHUTDOWN)
            if await run_log.end(events, failed, None):
                await jobs.done(job)
                return
        if await run_log.stopped():  # a cancel or delete ended it first
            await jobs.done(job)

    async def _heartbeat(self, job: Job, run_log: RunLog, run_task: asyncio.Task[None]) -> None:
        """Renew the job's lease; stop the run if it was ended elsewhere (a missed notice)."""
        store = self.app[STORE]
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await store.jobs.renew(job)
                record = await store.responses.get(job.account, job.response_id)
            except StoreUnavailable as exc:
                log.warning("lease not renewed: %s", type(exc).__name__)
                continue
            if record is None or record.terminal or record.attempt != run_log.attempt:
                run_task.cancel()
                return


async def background_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: this process's worker, from start-up to shutdown (after the HTTP pool)."""
    worker = Worker(app)
    worker.start()
    app[LIFECYCLE].on_drain.append(worker.drain)
    yield
    await worker.stop()
