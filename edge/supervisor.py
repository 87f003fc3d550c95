"""`edge serve --workers N`: N gateway processes sharing one port (SO_REUSEPORT) under a parent
that forwards SIGTERM and exits 0 once every worker has exited 0.

Workers are fresh interpreters (not forks), each an ordinary `edge serve` told by
`--shared-port` that it is one of a group: only they bind with SO_REUSEPORT, the client port
and the metrics port alike. The parent first checks both ports are free, so a group never
shares them with another gateway. Their metrics go to a shared PROMETHEUS_MULTIPROC_DIR so any
worker's /metrics answers for all of them, and each worker's probes answer for itself as on
the client port (the parent serves nothing: a probe it answered would say nothing of the
workers). They fail
together: a worker that exits on its own (say, Redis unreachable at startup) stops the rest,
and the parent exits with that worker's code, for systemd or a container runtime to act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from prometheus_client import multiprocess

from edge.server import claim_ports
from edge.settings import SAME_PORT, Settings, child_env

log = logging.getLogger("edge.supervisor")
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def prepare_metrics_dir(configured: str | None) -> tuple[str, bool]:
    """The directory workers share metrics through, emptied; and whether we made it."""
    if configured is None:
        return tempfile.mkdtemp(prefix="edge-metrics-"), True
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    # Files of an earlier run would be added to this run's counters.
    for stale in path.glob("*.db"):
        stale.unlink()
    return configured, False


def _die_with_parent() -> None:
    """In the worker, before exec: SIGTERM when the parent dies (Linux), so a killed parent
    leaves no worker holding the port; the worker then drains like any SIGTERM."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def worker_command(host: str, port: int, metrics_port: int | None) -> list[str]:
    """How a worker is started: the same interpreter, `edge serve` with one shared-port process."""
    metrics = SAME_PORT if metrics_port is None else str(metrics_port)
    serve = ["serve", "--host", host, "--port", str(port), "--metrics-port", metrics]
    return [sys.executable, "-m", "edge", *serve, "--shared-port"]


class Supervisor:
    """Starts the workers, forwards signals, and collects their exit codes."""

    def __init__(self, command: list[str], workers: int, env: dict[str, str], metrics_dir: str):
        self.command = command
        self.workers = workers
        self.env = env
        self.metrics_dir = metrics_dir
        self.procs: list[asyncio.subprocess.Process] = []
        self.stopping = False

    def _forward(self, sig: signal.Signals) -> None:
        if not self.stopping:
            log.info("stopping workers", extra={"fields": {"signal": sig.name}})
        self.stopping = True
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)

    async def run(self) -> int:
        """Run until every worker has exited; the exit code for the parent."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._forward, sig)
        for _ in range(self.workers):
            if self.stopping:
                break
            # A session of their own: a terminal's Ctrl-C reaches only the parent, which
            # forwards it once (a second signal would make a worker cut its streams).
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            self.procs.append(proc)
        log.info(
            "workers started",
            extra={"fields": {"workers": [p.pid for p in self.procs]}},
        )
        waits = {asyncio.ensure_future(p.wait()): p for p in self.procs}
        failure = 0
        while waits:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                proc = waits.pop(task)
                code = task.result()
                multiprocess.mark_process_dead(proc.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
                log.info("worker exited", extra={"fields": {"pid": proc.pid, "code": code}})
                # A worker still starting when the signal came has no handler yet: the signal
                # we forwarded ended it, which is a clean stop (it had nothing to drain).
                forwarded = self.stopping and code in (-signal.SIGTERM, -signal.SIGINT)
                if code != 0 and failure == 0 and not forwarded:
                    failure = code if code > 0 else 1
                if not self.stopping:
                    log.error("worker exited on its own; stopping the others")
                    failure = failure or 1
                    self._forward(signal.SIGTERM)
        return failure


def supervise(settings: Settings, workers: int) -> int:
    """Run `workers` gateway processes on the settings' ports until stopped; StartupError if
    one is taken."""
    host, port, metrics_port = settings.host, settings.port, settings.metrics_port
    directory, made = prepare_metrics_dir(settings.metrics_dir)
    env = child_env({"PROMETHEUS_MULTIPROC_DIR": directory})
    supervisor = Supervisor(worker_command(host, port, metrics_port), workers, env, directory)

    async def run() -> int:
        await claim_ports(host, port, metrics_port)
        return await supervisor.run()

    try:
        return asyncio.run(run())
    finally:
        if made:
            shutil.rmtree(directory, ignore_errors=True)
