"""The worker: claims jobs it has handlers for, runs them concurrently, records their outcomes.

One asyncio loop per worker process. The fetch loop claims in batches sized to the free slots
and wakes on LISTEN/NOTIFY, polling with a capped backoff when idle; each job runs as a task
(async handlers on the loop, sync ones on daemon threads); outcomes go through the completer in
batches; one heartbeat statement per interval renews every lease held and brings cancellations
and lost leases back to the handlers. Stopping is graceful: no new claims, running jobs get a
grace period, then are told to stop and their leases are released without costing an attempt.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pydantic import BaseModel

from jobforge import errors
from jobforge.queue import AsyncQueueClient, Job, Outcome
from jobforge.queue.models import FinishState, HeartbeatState
from jobforge.worker import logs
from jobforge.worker.completer import Completer
from jobforge.worker.context import JobContext
from jobforge.worker.executor import Executor
from jobforge.worker.heartbeat import heartbeat_loop
from jobforge.worker.metrics import Metrics
from jobforge.worker.middleware import Middleware, chain
from jobforge.worker.registry import HandlerSpec, Registry, default_registry

logger = logs.logger

#: The channel the enqueue trigger notifies (migrations/0005).
CHANNEL = "jobforge_jobs"
#: How long a stop waits for a claim in flight before cutting it short.
_CLAIM_PATIENCE_S = 1.0


@dataclass(frozen=True)
class WorkerConfig:
    name: str | None = None  #: lease holder name; default host:pid:random
    concurrency: int = 8
    types: Sequence[str] | None = None  #: narrow the registry's types
    lease_s: float = 30.0
    heartbeat_s: float | None = None  #: default lease_s / 3
    poll_min_s: float = 0.05  #: idle polling starts here and doubles ...
    poll_max_s: float = 2.0  #: ... up to here (LISTEN/NOTIFY wakes it sooner)
    grace_s: float = 10.0  #: how long running jobs may finish after a stop
    cancel_grace_s: float = 5.0  #: how long a sync handler may take to notice a cancellation
    max_abandoned: int = 8  #: stuck sync threads tolerated before the worker stops taking work
    default_timeout_s: float | None = None  #: for handlers that declare none
    completion_batch: int = 200
    completion_flush_s: float = 0.005
    progress_s: float = 0.5  #: progress is written at most this often per job
    listen: bool = True
    exit_when_idle: bool = False  #: stop once nothing is due, running or unrecorded (drain)
    #: stop after this many jobs, once they have finished and their outcomes are recorded (a
    #: process that should be replaced now and then; a golden case's single job)
    max_jobs: int | None = None

    def checked(self) -> WorkerConfig:
        problems = [
            f"{name} must be positive"
            for name in ("concurrency", "lease_s", "poll_min_s", "poll_max_s", "progress_s")
            if not getattr(self, name) > 0
        ]
        if self.heartbeat_s is not None and not 0 < self.heartbeat_s < self.lease_s:
            problems.append("heartbeat_s must be positive and shorter than lease_s")
        if self.default_timeout_s is not None and not self.default_timeout_s > 0:
            problems.append("default_timeout_s must be positive")
        if self.max_jobs is not None and not self.max_jobs > 0:
            problems.append("max_jobs must be positive")
        if self.grace_s < 0 or self.cancel_grace_s < 0 or self.max_abandoned < 0:
            problems.append("grace_s, cancel_grace_s and max_abandoned must not be negative")
        if problems:
            raise errors.ConfigurationError("worker: " + "; ".join(problems))
        return self


@dataclass
class WorkerReport:
    name: str
    counts: dict[str, float]
    stopped_because: str | None = None  #: set when the worker stopped itself (not asked to)
    elapsed_s: float = 0.0


@dataclass(eq=False)
class _Running:
    job: Job
    spec: HandlerSpec
    ctx: JobContext
    task: asyncio.Task[None] | None = None


#: A lease: the job and the secret token of one claim of it. The worker's state is keyed by
#: lease, not by job: when its own expired lease of a job is claimed again (a network blip longer
#: than the lease), the old attempt and the new one are two entries, and what happens to the old
#: one (lost) never touches the new one.
Lease = tuple[int, uuid.UUID]


@dataclass(eq=False)
class _Held:
    ctx: JobContext


@dataclass
class _State:
    running: dict[Lease, _Running] = field(default_factory=dict)
    held: dict[Lease, _Held] = field(default_factory=dict)  #: leases: running or unrecorded
    release: set[Lease] = field(default_factory=set)  #: stopped by shutdown
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  #: running or compensating


class Worker:
    def __init__(
        self,
        client: AsyncQueueClient | str,
        registry: Registry | None = None,
        config: WorkerConfig | None = None,
        *,
        middleware: Sequence[Middleware] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.config = (config or WorkerConfig()).checked()
        self.registry = registry if registry is not None else default_registry
        self.name = self.config.name or _default_name()
        self.metrics = metrics or Metrics()
        self._client_arg = client
        self._middleware = tuple(middleware)
        self._state = _State()
        self._executor = Executor(
            self.config.concurrency, on_abandon=lambda: self.metrics.inc("abandoned")
        )
        self._stopping = False
        self._grace_over = asyncio.Event()
        self._wake = asyncio.Event()
        self._claimed = 0  #: jobs this worker has claimed (for max_jobs)
        self._stopped_because: str | None = None
        self._client: AsyncQueueClient | None = None
        self._claiming: asyncio.Task[list[Job]] | None = None
        self._completer: Completer | None = None

    # control
    def stop(self, reason: str | None = None) -> None:
        """Stop claiming and shut down gracefully; a second call cuts the grace period short.
        Call it on the worker's event loop (signal handlers added with `add_signal_handler` are)."""
        if self._stopping:
            self._grace_over.set()
        self._stopping = True
        if reason and self._stopped_because is None:
            self._stopped_because = reason
        claiming = self._claiming
        if claiming is not None and not claiming.done():
            # A claim normally answers in milliseconds; one stuck on a dead connection is not
            # waited out (what it took, if anything, comes back when the leases expire).
            asyncio.get_running_loop().call_later(_CLAIM_PATIENCE_S, claiming.cancel)
        self._wake.set()

    async def run(self) -> WorkerReport:
        types = self.registry.types(self.config.types)
        if not types:
            raise errors.ConfigurationError("the worker has no handlers: register at least one")
        began = time.perf_counter()
        own = isinstance(self._client_arg, str)
        client = (
            await AsyncQueueClient.connect(self._client_arg, max_size=4)
            if isinstance(self._client_arg, str)
            else self._client_arg
        )
        self._client = client
        self._completer = Completer(
            client,
            self.name,
            self._on_finished,
            batch=self.config.completion_batch,
            flush_s=self.config.completion_flush_s,
        )
        lease_s = self.config.lease_s
        helpers = [
            asyncio.ensure_future(
                heartbeat_loop(
                    client,
                    self.name,
                    self._leases,
                    self._on_heartbeat,
                    interval_s=self.config.heartbeat_s or lease_s / 3,
                    lease_s=lease_s,
                )
            ),
            asyncio.ensure_future(self._progress_loop(client)),
            asyncio.ensure_future(self._reap_loop(client)),
        ]
        if self.config.listen:
            helpers.append(asyncio.ensure_future(self._listen(client)))
        logger.info(
            "worker %s started: types %s, concurrency %d",
            self.name,
            ", ".join(types),
            self.config.concurrency,
            extra={"worker": self.name},
        )
        try:
            await self._fetch_loop(client, types)
        finally:
            await self._shutdown(client)
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._executor.close()
            if own:
                await client.close()
        if self._stopped_because:
            logger.error(
                "worker %s stopped: %s",
                self.name,
                self._stopped_because,
                extra={"worker": self.name},
            )
        return WorkerReport(
            name=self.name,
            counts=self.metrics.snapshot(),
            stopped_because=self._stopped_because,
            elapsed_s=time.perf_counter() - began,
        )

    # fetching
    async def _fetch_loop(self, client: AsyncQueueClient, types: list[str]) -> None:
        config = self.config
        state = self._state
        assert self._completer is not None
        idle = config.poll_min_s
        batch_floor = max(1, config.concurrency // 4)
        while not self._stopping:
            if self._executor.abandoned > config.max_abandoned:
                self.stop(
                    f"{self._executor.abandoned} handler threads did not stop after a timeout or "
                    f"cancellation (limit {config.max_abandoned}): the worker stops taking work"
                )
                break
            free = config.concurrency - len(state.running)
            if config.max_jobs is not None:
                left = config.max_jobs - self._claimed
                if left <= 0:
                    if not state.running and not self._completer.busy:
                        break
                    await self._sleep(None)  # a finishing job or a recorded outcome wakes us
                    continue
                free = min(free, left)
            if free < batch_floor and state.running:
                await self._sleep(None)  # a finishing job wakes us
                continue
            if config.exit_when_idle and not state.running and self._completer.busy:
                # A drain with nothing running claims once its outcomes are recorded: a claim
                # before then, if empty, would have to be repeated after them.
                await self._sleep(None)
                continue
            self._wake.clear()
            self._claiming = asyncio.ensure_future(
                client.claim(self.name, free, types=types, lease_s=config.lease_s)
            )
            try:
                jobs = await self._claiming
            except asyncio.CancelledError:
                if self._stopping and self._claiming.cancelled():
                    break
                raise
            except errors.JobforgeError:
                raise
            except Exception:
                logger.warning(
                    "claim failed; retrying in %.2f s",
                    idle,
                    exc_info=True,
                    extra={"worker": self.name},
                )
                await self._sleep(idle)
                idle = min(idle * 2, config.poll_max_s)
                continue
            self._claimed += len(jobs)
            for job in jobs:
                self._start(job)
            if jobs:
                idle = config.poll_min_s
                if len(jobs) == free:
                    continue  # there may be more
            elif config.exit_when_idle and not state.running and not self._completer.busy:
                break
            # Running jobs and outcomes being recorded wake the loop when they finish; a drain
            # has nothing else to wait for, so it does not poll the database meanwhile.
            busy = state.running or (config.exit_when_idle and self._completer.busy)
            woken = await self._sleep(None if busy else idle)
            idle = config.poll_min_s if woken else min(idle * 2, config.poll_max_s)

    async def _sleep(self, timeout: float | None) -> bool:
        """Wait for a wake-up (notify, a freed slot, a stop) or the timeout; True when woken."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        self._wake.clear()
        return True

    async def _listen(self, client: AsyncQueueClient) -> None:
        from jobforge import db

        dsn = client.pool.conninfo
        if not isinstance(dsn, str):
            logger.info("the pool's conninfo is not a string: polling only")
            return
        while True:
            try:
                async for _ in db.notifications(dsn, CHANNEL):
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning(
                    "LISTEN connection lost; polling until it is back",
                    exc_info=True,
                    extra={"worker": self.name},
                )
                await asyncio.sleep(self.config.poll_max_s)

    # running one job
    def _start(self, job: Job) -> None:
        assert job.lease_token is not None
        spec = self.registry.get(job.type)
        ctx = JobContext(job=job, worker=self.name, client=self._client)
        running = _Running(job=job, spec=spec, ctx=ctx)
        lease = (job.id, job.lease_token)
        self._state.running[lease] = running
        self._state.held[lease] = _Held(ctx=ctx)
        self.metrics.inc("claimed")
        running.task = task = asyncio.ensure_future(self._execute(running))
        self._state.tasks.add(task)
        task.add_done_callback(self._state.tasks.discard)

    async def _execute(self, running: _Running) -> None:
        job, ctx = running.job, running.ctx
        started = time.perf_counter()
        outcome: Outcome | None = None
        try:
            outcome = await self._outcome(running)
        finally:
            self.metrics.observe_handler(time.perf_counter() - started)
            del self._state.running[_lease(job)]
            self._wake.set()
        reason = ctx.stop_reason
        if reason in ("canceled", "lease_lost", "shutdown"):
            await self._stopped(running)
            return
        assert outcome is not None
        assert self._completer is not None
        self._completer.submit(outcome)

    async def _outcome(self, running: _Running) -> Outcome | None:
        """Run the job in this task; None when it was stopped (cancel, lost lease, shutdown)."""
        job, spec, ctx = running.job, running.spec, running.ctx
        token = job.lease_token
        assert token is not None

        def done(kind: str, **fields: Any) -> Outcome:
            backoff = spec.backoff_s if kind == "retry" else None  # the runner's retry policy
            return Outcome(job_id=job.id, lease_token=token, outcome=kind,  # type: ignore[arg-type]
                           backoff_s=backoff, **fields)  # fmt: skip

        timeout = spec.timeout_s or self.config.default_timeout_s
        timer = None
        if timeout is not None:
            # Our own timer rather than asyncio.timeout: the handler sees stop_reason "timeout"
            # (and sync ones ctx.cancelled) before the cancellation lands, and a TimeoutError the
            # handler raises itself stays an ordinary exception.
            task = asyncio.current_task()
            assert task is not None
            timer = asyncio.get_running_loop().call_later(timeout, self._time_out, ctx, task)
        try:
            arg = job.payload
            if spec.parse_input is not None:
                try:
                    arg = spec.parse_input(job.payload)
                except Exception as exc:
                    raise errors.InvalidInput(f"invalid input for {job.type}: {exc}") from exc
            if self._middleware:
                call = chain(self._middleware, partial(self._executor.run, spec, arg=arg))
                result = await call(ctx)
            else:
                result = await self._executor.run(spec, ctx, arg)
            if ctx.stop_reason == "timeout":  # it returned anyway, after being told to stop
                raise asyncio.CancelledError
            return done("succeeded", result=_json_result(result), error=None)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if ctx.stop_reason is None or current is None:
                raise
            if current.cancelling():
                current.uncancel()  # we asked for it: the job stops, the worker goes on
            if ctx.stop_reason != "timeout":
                return None
            self.metrics.inc("timed_out")
            message = f"the handler ran past its timeout of {timeout} s"
            logger.warning("job %d timed out: %s", job.id, message,
                           extra=logs.job_fields(job, self.name))  # fmt: skip
            return done("retry", result=None, error=_error("timeout", None, message))
        except errors.InvalidInput as exc:
            self._not_retried(job, "invalid input", exc)
            return done("failed", result=None, error=_error("invalid_input", exc))
        except errors.NonRetryable as exc:
            self._not_retried(job, type(exc).__name__, exc)
            return done("failed", result=None, error=_error("non_retryable", exc))
        except Exception as exc:
            if ctx.stop_reason in ("canceled", "lease_lost", "shutdown"):
                return None
            if ctx.stop_reason == "timeout":  # the handler turned the cancellation into an error
                self.metrics.inc("timed_out")
                message = f"the handler ran past its timeout of {timeout} s"
                logger.warning("job %d timed out: %s", job.id, message,
                               extra=logs.job_fields(job, self.name))  # fmt: skip
                return done("retry", result=None, error=_error("timeout", exc, message))
            logger.warning("job %d failed: %s", job.id, exc, extra=logs.job_fields(job, self.name))
            return done("retry", result=None, error=_error("exception", exc))
        finally:
            if timer is not None:
                timer.cancel()

    def _not_retried(self, job: Job, why: str, exc: BaseException) -> None:
        """A job failed for good: one line (a retried failure logs a warning already)."""
        reason = " ".join(str(exc).split())[:1000] or type(exc).__name__
        logger.error("job %d (%s) failed, not retried (%s): %s", job.id, job.type, why, reason,
                     extra=logs.job_fields(job, self.name))  # fmt: skip

    async def _stopped(self, running: _Running) -> None:
        """A job stopped by a cancellation, a lost lease or the shutdown: nothing to complete."""
        job, ctx = running.job, running.ctx
        lease = _lease(job)
        held = self._state.held.pop(lease, None)
        fields = logs.job_fields(job, self.name)
        if ctx.stop_reason == "lease_lost":
            self.metrics.inc("lost")
            logger.warning("job %d: lease lost, its outcome is dropped", job.id, extra=fields)
        elif ctx.stop_reason == "shutdown" and held is not None:
            self._state.release.add(lease)
        elif ctx.stop_reason == "canceled" and held is not None:
            self.metrics.inc("canceled")
            await self._compensate(running, lease[1])

    async def _compensate(self, running: _Running, token: uuid.UUID) -> None:
        job, spec, ctx = running.job, running.spec, running.ctx
        record: dict[str, Any] = {"compensation": "none"}
        if spec.on_cancel is not None:
            is_async = asyncio.iscoroutinefunction(spec.on_cancel)
            try:
                await self._executor.call(spec.on_cancel, is_async, job.payload, ctx)
                record = {"compensation": "ok"}
            except Exception as exc:
                record = {"compensation": "failed", "error": _error("exception", exc)}
                logger.warning(
                    "job %d: compensation failed: %s",
                    job.id,
                    exc,
                    extra=logs.job_fields(job, self.name),
                )
        assert self._client is not None
        try:
            await self._client.acknowledge_cancel(self.name, job.id, token, record)
        except Exception:
            logger.warning(
                "job %d: could not record the cancellation",
                job.id,
                exc_info=True,
                extra=logs.job_fields(job, self.name),
            )

    def _time_out(self, ctx: JobContext, task: asyncio.Task[Any]) -> None:
        if ctx.stop_reason is None and not task.done():
            ctx.stop("timeout")
            task.cancel()

    def _stop_job(self, lease: Lease, reason: Any) -> None:
        held = self._state.held.get(lease)
        if held is not None:
            held.ctx.stop(reason)
        running = self._state.running.get(lease)
        if running is None or running.task is None or running.task.done():
            return
        task = running.task
        if running.spec.is_async or reason == "shutdown":
            task.cancel()
        else:  # a thread cannot be interrupted: give it time to see ctx.cancelled
            asyncio.get_running_loop().call_later(
                self.config.cancel_grace_s, lambda: task.done() or task.cancel()
            )

    # bookkeeping
    def _leases(self) -> list[Lease]:
        return list(self._state.held)

    def _on_heartbeat(self, lease: Lease, state: HeartbeatState) -> None:
        self._stop_job(lease, "canceled" if state == "canceled" else "lease_lost")

    def _on_finished(self, outcome: Outcome, state: FinishState) -> None:
        held = self._state.held.pop((outcome.job_id, outcome.lease_token), None)
        counter = {"retry_scheduled": "retried"}.get(state, state)
        self.metrics.inc(counter)
        if state == "lost" and held is not None:
            logger.warning(
                "job %d: lease lost before its outcome was recorded",
                outcome.job_id,
                extra=logs.job_fields(held.ctx.job, self.name),
            )
        self._wake.set()

    async def _progress_loop(self, client: AsyncQueueClient) -> None:
        while True:
            await asyncio.sleep(self.config.progress_s)
            for (job_id, token), running in list(self._state.running.items()):
                pending = running.ctx.take_progress()
                if pending is None:
                    continue
                try:
                    await client.progress(self.name, job_id, token, *pending)
                except Exception:
                    logger.warning(
                        "job %d: progress not written",
                        job_id,
                        exc_info=True,
                        extra=logs.job_fields(running.job, self.name),
                    )

    async def _reap_loop(self, client: AsyncQueueClient) -> None:
        """Expire stale leases of every type, once per lease period: a job whose worker died
        goes back to the queue even when no worker of its type is claiming (claims take over
        only their own types)."""
        while True:
            await asyncio.sleep(self.config.lease_s)
            try:
                reaped = await client.reap()
            except Exception:
                logger.warning("reaping stale leases failed", exc_info=True,
                               extra={"worker": self.name})  # fmt: skip
                continue
            if reaped:
                self.metrics.inc("reaped", reaped)
                logger.info("expired %d stale leases", reaped, extra={"worker": self.name})

    async def _within_grace(self, tasks: list[asyncio.Task[None]]) -> None:
        """Until the tasks are done, the grace period ends, or a second stop cuts it short."""
        grace_over = asyncio.ensure_future(self._grace_over.wait())
        try:
            await asyncio.wait(
                [asyncio.ensure_future(asyncio.wait(tasks)), grace_over],
                timeout=self.config.grace_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            grace_over.cancel()

    async def _shutdown(self, client: AsyncQueueClient) -> None:
        self._stopping = True
        state = self._state
        tasks = list(state.tasks)  # running jobs, and compensations of canceled ones
        if tasks:
            logger.info(
                "waiting up to %.1f s for %d running jobs",
                self.config.grace_s,
                len(tasks),
                extra={"worker": self.name},
            )
            await self._within_grace(tasks)
        for lease in list(state.running):
            self._stop_job(lease, "shutdown")
        leftover = list(state.tasks)
        if leftover:
            await asyncio.wait(leftover, timeout=5)
        assert self._completer is not None
        await self._completer.close()
        if state.release:
            leases = sorted(state.release)
            try:
                answers = await client.release(self.name, leases)
                self.metrics.inc("released", sum(a == "released" for a in answers.values()))
            except Exception:
                logger.warning(
                    "could not release %d leases; they expire within %.0f s",
                    len(leases),
                    self.config.lease_s,
                    exc_info=True,
                    extra={"worker": self.name},
                )
            state.release.clear()


def _lease(job: Job) -> Lease:
    assert job.lease_token is not None
    return (job.id, job.lease_token)


def _default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _json_result(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    try:
        json.dumps(result, allow_nan=False)  # jsonb has no NaN or Infinity
    except (TypeError, ValueError) as exc:
        raise errors.NonRetryable(f"the handler's result is not JSON: {exc}") from None
    return result


def _error(kind: str, exc: BaseException | None, message: str | None = None) -> dict[str, Any]:
    if exc is None:
        return {"kind": kind, "message": message}
    return {
        "kind": kind,
        "type": type(exc).__qualname__,
        "message": (message or str(exc))[:4000],
        "traceback": "".join(traceback.format_exception(exc))[-8000:],
        **({"details": details} if (details := getattr(exc, "details", None)) is not None else {}),
    }
