"""The worker runtime in-process against a real database: outcomes, timeouts, cancellation,
heartbeats, lost leases, progress, middleware, graceful stop, LISTEN/NOTIFY, drain, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import socket
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from jobforge import errors
from jobforge.provision import Database
from jobforge.queue import AsyncQueueClient, Job, NewJob, Outcome, QueueClient, lease_id
from jobforge.states import JobState
from jobforge.worker import (
    JobContext,
    Metrics,
    Middleware,
    Next,
    NonRetryable,
    Registry,
    Worker,
    WorkerConfig,
    WorkerReport,
    drain,
    drain_async,
)
from jobforge.worker.gauges import gauge_loop

T = TypeVar("T")
Payload = dict[str, Any]
Scenario = Callable[[Worker, AsyncQueueClient], Awaitable[T]]

#: No test may take longer than this, whatever goes wrong.
LIMIT_S = 20.0


@pytest.fixture
def client(jobforge_db: Database) -> Iterator[QueueClient]:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        yield queue


# helpers


async def until(
    check: Callable[[], bool | Awaitable[bool]], *, timeout_s: float = 5.0, what: str = ""
) -> None:
    """Poll `check` until it holds; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = check()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or check}")
        await asyncio.sleep(0.01)


def has_event(queue: AsyncQueueClient, job_id: int, kind: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return kind in [e.kind for e in await queue.events(job_id)]

    return check


def run_worker(
    dsn: str,
    registry: Registry,
    config: WorkerConfig,
    scenario: Scenario[T],
    *,
    middleware: Sequence[Middleware] = (),
    metrics: Metrics | None = None,
    stop: bool = True,
) -> tuple[WorkerReport, T]:
    """Run a worker while `scenario(worker, queue)` acts on it; stop it (unless the scenario
    did) once the scenario returns, and hand back the worker's report and the scenario's value."""

    async def main() -> tuple[WorkerReport, T]:
        queue = await AsyncQueueClient.connect(dsn, tenant="acme")
        worker = Worker(dsn, registry, config, middleware=middleware, metrics=metrics)
        running = asyncio.ensure_future(worker.run())
        acting = asyncio.ensure_future(scenario(worker, queue))
        try:
            await asyncio.wait(
                {running, acting}, timeout=LIMIT_S, return_when=asyncio.FIRST_COMPLETED
            )
            if not acting.done():
                acting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acting
                worker.stop()
                worker.stop()
                if running.done():
                    running.result()  # the worker's own error, if it raised
                    raise AssertionError("the worker stopped before the scenario was over")
                raise AssertionError("the scenario did not finish in time")
            if stop:
                worker.stop()
            report = await asyncio.wait_for(running, LIMIT_S)
            return report, acting.result()
        finally:
            if not running.done():
                worker.stop()
                worker.stop()
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(running, 10)
            await queue.close()

    return asyncio.run(main())


def kinds(queue: QueueClient, job_id: int) -> list[str]:
    return [e.kind for e in queue.events(job_id)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fast(**fields: Any) -> WorkerConfig:
    """A worker config for tests: named, short idle polling."""
    base: dict[str, Any] = {"name": "w1", "poll_min_s": 0.02, "poll_max_s": 0.2}
    return WorkerConfig(**{**base, **fields})


# results


def test_sync_and_async_handlers_succeed_and_store_their_results(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()

    def double(payload: Payload, ctx: JobContext) -> Payload:
        return {"n": payload["n"] * 2, "job": ctx.job_id, "tenant": ctx.tenant_id}

    async def greet(payload: Payload, ctx: JobContext) -> str:
        await asyncio.sleep(0.01)
        return f"hello {payload['who']} (attempt {ctx.attempt})"

    registry.register("math.double", double)
    registry.register("text.greet", greet)
    a = client.enqueue("math.double", {"n": 21}).job_id
    b = client.enqueue("text.greet", {"who": "ann"}).job_id

    report = drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)

    assert client.result(a) == {"n": 42, "job": a, "tenant": "acme"}
    assert client.result(b) == "hello ann (attempt 1)"
    for job_id in (a, b):
        assert client.get(job_id).status is JobState.SUCCEEDED
        events = client.events(job_id)
        assert [(e.kind, e.worker) for e in events] == [
            ("created", None),
            ("claimed", "w1"),
            ("succeeded", "w1"),
        ]
        assert [(x.attempt, x.outcome, x.worker) for x in client.attempts(job_id)] == [
            (1, "succeeded", "w1")
        ]
    assert report.name == "w1"
    assert report.stopped_because is None
    assert (report.counts["claimed"], report.counts["succeeded"]) == (2, 2)
    assert report.counts["retried"] == report.counts["failed"] == 0


class Counting(AsyncQueueClient):
    """A client that notes its claims (with their limits) and finishes, in order."""

    calls: list[tuple[str, int]]

    async def claim(self, worker: str, limit: int, **kwargs: Any) -> Any:
        self.calls.append(("claim", limit))
        return await super().claim(worker, limit, **kwargs)

    async def finish_each(self, worker: str, outcomes: Sequence[Outcome], **kwargs: Any) -> Any:
        self.calls.append(("finish", len(outcomes)))
        return await super().finish_each(worker, outcomes, **kwargs)


def run_counted(dsn: str, registry: Registry, config: WorkerConfig) -> tuple[WorkerReport, Any]:
    """The worker run to its end on a `Counting` client; its report and the client's calls."""

    async def main() -> tuple[WorkerReport, Any]:
        queue = await Counting.connect(dsn)
        assert isinstance(queue, Counting)
        queue.calls = []
        try:
            report = await asyncio.wait_for(Worker(queue, registry, config).run(), LIMIT_S)
        finally:
            await queue.close()
        return report, queue.calls

    return asyncio.run(main())


def test_a_drain_with_nothing_running_claims_again_only_after_its_outcomes_are_recorded(
    client: QueueClient, jobforge_db: Database
) -> None:
    """One job: claim it, record its outcome, one empty claim, done (a claim while the outcome
    was still being recorded would have to be repeated after it)."""
    registry = Registry()
    registry.register("math.one", lambda payload, ctx: 1)
    job_id = client.enqueue("math.one", {}).job_id

    config = fast(concurrency=1, exit_when_idle=True, listen=False)
    report, calls = run_counted(jobforge_db.dsn, registry, config)
    assert report.counts["succeeded"] == 1
    assert client.get(job_id).status is JobState.SUCCEEDED
    assert [name for name, _ in calls] == ["claim", "finish", "claim"]


def test_max_jobs_claims_no_more_and_stops_once_they_are_recorded(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    registry.register("math.one", lambda payload, ctx: 1)
    ids = [client.enqueue("math.one", {"n": n}).job_id for n in range(3)]

    # not a drain: max_jobs alone ends it
    config = fast(concurrency=4, max_jobs=2, listen=False)
    report, calls = run_counted(jobforge_db.dsn, registry, config)
    assert report.counts["succeeded"] == 2
    claims = [limit for name, limit in calls if name == "claim"]
    assert claims == [2]  # asked for two at most, and never claimed again
    assert sorted(client.get(i).status.value for i in ids) == ["queued", "succeeded", "succeeded"]


class Summary(BaseModel):
    total: int
    day: date
    labels: list[str]


def test_a_pydantic_result_is_stored_as_its_json(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()

    def summarize(payload: Payload, ctx: JobContext) -> Summary:
        return Summary(total=len(payload["items"]), day=date(2026, 1, 2), labels=payload["items"])

    registry.register("report.summary", summarize)
    job_id = client.enqueue("report.summary", {"items": ["a", "b"]}).job_id
    drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)
    assert client.result(job_id) == {"total": 2, "day": "2026-01-02", "labels": ["a", "b"]}


def test_an_integer_too_long_to_print_fails_its_job_alone(
    client: QueueClient, jobforge_db: Database
) -> None:
    """A result Python cannot write as JSON (an int past its 4,300-digit limit) fails its own
    job, not retried, and the outcomes recorded with it in one batch are recorded as usual."""
    registry = Registry()
    registry.register("big.int", lambda payload, ctx: 10**5000 if payload["big"] else 1)
    big = client.enqueue("big.int", {"big": True}, max_attempts=3).job_id
    small = client.enqueue("big.int", {"big": False}).job_id
    drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)
    job = client.get(big)
    assert job.status is JobState.FAILED
    assert job.error["kind"] == "non_retryable"
    assert "not JSON" in job.error["message"]
    assert client.get(small).status is JobState.SUCCEEDED
    assert client.result(small) == 1


def test_a_timeout_past_a_floats_range_runs_under_the_types_bound(
    client: QueueClient, jobforge_db: Database
) -> None:
    """The envelope is the producer's: a timeout_s of 400 digits is no finite number, so the
    job runs under its type's bound, and finishes (it stayed running, its lease renewed, for
    as long as the worker lived when the worker's own admission raised on it)."""
    registry = Registry()
    registry.register("ops.huge", lambda payload, ctx: ctx.run.admission, timeout_s=30)
    job_id = client.enqueue("ops.huge", {}, envelope={"timeout_s": 10**400}).job_id
    drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)
    assert client.get(job_id).status is JobState.SUCCEEDED
    assert client.result(job_id)["timeout"] == {"seconds": 30, "source": "runner"}


def test_what_postgres_cannot_store_fails_its_own_job_not_the_batch(
    client: QueueClient, jobforge_db: Database
) -> None:
    """A NUL in a result, or in an exception's message, once failed the whole statement that
    recorded a batch of outcomes: every job in it ran again. Now the result fails its own job,
    the message is kept with escapes, and the job beside them succeeds."""
    registry = Registry()

    def odd(payload: dict[str, Any], ctx: JobContext) -> Any:
        if payload["how"] == "raise":
            raise ValueError("bad\x00byte")
        return {"nul": "a\x00"} if payload["how"] == "nul" else 1

    registry.register("ops.odd", odd)
    nul = client.enqueue("ops.odd", {"how": "nul"}).job_id
    raised = client.enqueue("ops.odd", {"how": "raise"}, max_attempts=1).job_id
    fine = client.enqueue("ops.odd", {"how": "fine"}).job_id
    drain(jobforge_db.dsn, registry, fast(concurrency=3), timeout_s=LIMIT_S)
    failed = client.get(nul)
    assert failed.status is JobState.FAILED
    assert "it holds a NUL character" in failed.error["message"]
    dead = client.get(raised)
    assert dead.status is JobState.DEAD
    assert dead.error["message"] == "bad\\x00byte"
    assert client.get(fine).status is JobState.SUCCEEDED
    assert client.result(fine) == 1


def test_a_result_that_is_not_json_fails_the_job_for_good(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()

    def tags(payload: Payload, ctx: JobContext) -> set[str]:
        return {"a", "b"}

    registry.register("tags.set", tags)
    job_id = client.enqueue("tags.set", {}, max_attempts=3).job_id
    report = drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)

    job = client.get(job_id)
    assert job.status is JobState.FAILED  # not retried: another attempt returns a set again
    assert job.attempts == 1
    assert job.error["kind"] == "non_retryable"
    assert "not JSON" in job.error["message"]
    assert "set" in job.error["message"]
    assert client.result(job_id) is None
    assert kinds(client, job_id) == ["created", "claimed", "failed"]
    assert report.counts["failed"] == 1
    assert report.counts["succeeded"] == 0


def test_a_nan_result_is_not_json_either(client: QueueClient, jobforge_db: Database) -> None:
    """Python's json writes NaN, Postgres's jsonb refuses it: the job must fail, not hang."""
    registry = Registry()
    seen: list[int] = []

    def ratio(payload: Payload, ctx: JobContext) -> Payload:
        seen.append(ctx.job_id)
        return {"ratio": float("nan")}

    def fine(payload: Payload, ctx: JobContext) -> str:
        return "ok"

    registry.register("math.ratio", ratio)
    registry.register("math.fine", fine)
    bad = client.enqueue("math.ratio", {}).job_id
    good = client.enqueue("math.fine", {}).job_id
    report = drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)

    assert seen == [bad]
    job = client.get(bad)
    assert job.status is JobState.FAILED, job.status
    assert job.error["kind"] == "non_retryable"
    assert "JSON" in job.error["message"]
    # the other job of the same completion batch is recorded all the same
    assert client.get(good).status is JobState.SUCCEEDED
    assert report.counts["lost"] == 0


# failures


def test_an_exception_is_retried_with_backoff_and_recorded(
    client: QueueClient, jobforge_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry()

    def flaky(payload: Payload, ctx: JobContext) -> None:
        raise ValueError(f"boom on {payload['n']}")

    registry.register("ops.flaky", flaky)
    job_id = client.enqueue("ops.flaky", {"n": 7}).job_id
    report = drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)

    job = client.get(job_id)
    assert job.status is JobState.QUEUED
    assert job.attempts == 1
    events = client.events(job_id)
    assert [e.kind for e in events] == ["created", "claimed", "retry_scheduled"]
    assert job.run_at > events[-1].at  # backed off, not due at once
    assert datetime.fromisoformat(events[-1].data["run_at"]) == job.run_at
    assert job.error["kind"] == "exception"
    assert job.error["type"] == "ValueError"
    assert job.error["message"] == "boom on 7"
    assert "ValueError: boom on 7" in job.error["traceback"]
    # it starts at the worker's call into the handler: the frames above say nothing of the job
    lines = job.error["traceback"].splitlines()
    assert "frames of jobforge's worker left out" in lines[1]
    frames = [line for line in lines if line.startswith("  File ")]
    assert "jobforge/worker/" in frames[0]
    assert "test_worker.py" in frames[1]
    assert "in flaky" in frames[1]
    assert [(a.attempt, a.outcome) for a in client.attempts(job_id)] == [(1, "retry")]
    assert report.counts["retried"] == 1
    assert report.counts["timed_out"] == 0
    # the warning says what comes next, not "failed" for an attempt that will be retried
    assert (
        f"job {job_id} (ops.flaky), attempt 1 of 3, raised ValueError: boom on 7; it will be"
        " retried" in caplog.text
    )


def test_an_exception_on_the_last_attempt_is_dead(
    client: QueueClient, jobforge_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry()

    async def broken(payload: Payload, ctx: JobContext) -> None:
        raise KeyError("missing")

    registry.register("ops.broken", broken)
    job_id = client.enqueue("ops.broken", {}, max_attempts=1).job_id
    report = drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)

    job = client.get(job_id)
    assert job.status is JobState.DEAD
    assert job.error["kind"] == "exception"
    assert job.error["type"] == "KeyError"
    assert kinds(client, job_id) == ["created", "claimed", "dead"]
    assert report.counts["dead"] == 1
    assert report.counts["retried"] == 0
    assert (
        f"job {job_id} (ops.broken), attempt 1 of 1, raised KeyError: 'missing'; no attempts are"
        " left, so the job is dead" in caplog.text
    )
    assert any(r.levelname == "ERROR" and "so the job is dead" in r.message for r in caplog.records)


def test_a_handler_s_own_timeout_error_is_a_plain_exception(
    client: QueueClient, jobforge_db: Database
) -> None:
    """A TimeoutError raised by the handler (a socket, an HTTP client) is not the worker's
    timeout: there was none."""
    registry = Registry()

    async def upstream(payload: Payload, ctx: JobContext) -> None:
        raise TimeoutError("upstream did not answer")

    registry.register("net.call", upstream)
    job_id = client.enqueue("net.call", {}).job_id
    report = drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)

    job = client.get(job_id)
    assert job.status is JobState.QUEUED
    assert job.error["kind"] == "exception", job.error["message"]
    assert job.error["type"] == "TimeoutError"
    assert job.error["message"] == "upstream did not answer"
    assert report.counts["timed_out"] == 0


def test_non_retryable_and_invalid_input_fail_at_once(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    called: list[Any] = []

    class Order(BaseModel):
        sku: str
        qty: int

    def refuse(payload: Payload, ctx: JobContext) -> None:
        raise NonRetryable("the account is closed")

    def ship(order: Order, ctx: JobContext) -> int:
        called.append(order)
        return order.qty

    registry.register("ops.refuse", refuse)
    registry.register("ops.ship", ship, parse_input=Order.model_validate)
    refused = client.enqueue("ops.refuse", {}).job_id
    invalid = client.enqueue("ops.ship", {"sku": "x", "qty": "many"}).job_id
    valid = client.enqueue("ops.ship", {"sku": "x", "qty": 2}).job_id
    report = drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)

    job = client.get(refused)
    assert job.status is JobState.FAILED
    assert job.attempts == 1
    assert job.error["kind"] == "non_retryable"
    assert job.error["type"] == "NonRetryable"
    assert job.error["message"] == "the account is closed"
    assert kinds(client, refused) == ["created", "claimed", "failed"]

    job = client.get(invalid)
    assert job.status is JobState.FAILED
    assert job.error["kind"] == "invalid_input"
    assert job.error["message"].startswith("invalid input for ops.ship:")
    assert "qty" in job.error["message"]

    assert called == [Order(sku="x", qty=2)]  # the parsed input, never the invalid one
    assert client.result(valid) == 2
    assert report.counts["failed"] == 2
    assert report.counts["succeeded"] == 1


# timeouts


def test_an_async_handler_past_its_timeout_is_retried(
    client: QueueClient, jobforge_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry()
    saw: list[tuple[str, str | None, bool]] = []

    async def slow(payload: Payload, ctx: JobContext) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            saw.append(("cancelled", ctx.stop_reason, ctx.cancelled.is_set()))
            raise

    registry.register("ops.slow", slow, timeout_s=0.2)
    job_id = client.enqueue("ops.slow", {}).job_id
    began = time.monotonic()
    report = drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)

    assert time.monotonic() - began < 5
    assert [what for what, _, _ in saw] == ["cancelled"]
    job = client.get(job_id)
    assert job.status is JobState.QUEUED
    assert job.error["kind"] == "timeout"
    assert "0.2 s" in job.error["message"]
    assert kinds(client, job_id) == ["created", "claimed", "retry_scheduled"]
    assert report.counts["timed_out"] == 1
    assert report.counts["retried"] == 1
    assert report.counts["abandoned"] == 0
    # a retry is logged whatever caused it, a timeout as much as an exception
    assert (
        f"job {job_id} (ops.slow), attempt 1 of 3, the handler ran past its timeout of 0.2 s"
        " (runner's); it will be retried" in caplog.text
    )


def test_a_sync_handler_that_ignores_its_timeout_is_abandoned_and_its_slot_freed(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    stuck_returned = threading.Event()
    ran_while_stuck: list[bool] = []

    def stuck(payload: Payload, ctx: JobContext) -> None:
        time.sleep(2.0)  # ignores ctx.cancelled
        stuck_returned.set()

    def quick(payload: Payload, ctx: JobContext) -> int:
        ran_while_stuck.append(not stuck_returned.is_set())
        return int(payload["i"])

    registry.register("ops.stuck", stuck, timeout_s=0.2)
    registry.register("ops.quick", quick)
    stuck_id = client.enqueue("ops.stuck", {}, priority=0).job_id
    quick_ids = [
        e.job_id
        for e in client.enqueue_many(
            [NewJob(type="ops.quick", payload={"i": i}, priority=1) for i in range(3)]
        )
    ]
    began = time.monotonic()
    report = drain(jobforge_db.dsn, registry, fast(concurrency=1), timeout_s=LIMIT_S)
    elapsed = time.monotonic() - began

    # one slot: the quick jobs ran on it while the stuck thread still slept
    assert ran_while_stuck == [True, True, True]
    assert elapsed < 1.8
    assert [client.result(i) for i in quick_ids] == [0, 1, 2]
    job = client.get(stuck_id)
    assert job.status is JobState.QUEUED
    assert job.error["kind"] == "timeout"
    assert report.counts["timed_out"] == 1
    assert report.counts["abandoned"] == 1
    assert report.counts["succeeded"] == 3
    assert report.stopped_because is None


def test_an_abandoned_thread_does_not_cost_the_worker_a_slot(
    client: QueueClient, jobforge_db: Database
) -> None:
    """concurrency=2 and one handler thread abandoned: two sync jobs still run side by side."""
    registry = Registry()
    meet = threading.Barrier(2, timeout=1)

    def stuck(payload: Payload, ctx: JobContext) -> None:
        time.sleep(2.0)

    def pair(payload: Payload, ctx: JobContext) -> int:
        return meet.wait()  # needs the other job of the pair running at the same time

    registry.register("ops.stuck", stuck, timeout_s=0.2)
    registry.register("ops.pair", pair)
    client.enqueue("ops.stuck", {})

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> list[int]:
        await until(lambda: worker.metrics.counts["timed_out"] == 1, what="the timeout")
        ids = [
            e.job_id for e in await queue.enqueue_many([NewJob(type="ops.pair", payload={})] * 2)
        ]

        async def settled() -> bool:
            jobs = [await queue.get(i) for i in ids]
            return all(j.attempts and j.status is not JobState.RUNNING for j in jobs)

        await until(settled, what="the pair to finish")
        return ids

    report, ids = run_worker(jobforge_db.dsn, registry, fast(concurrency=2), scenario)

    assert [client.get(i).status for i in ids] == [JobState.SUCCEEDED] * 2, [
        client.get(i).error for i in ids
    ]
    assert report.counts["succeeded"] == 2


def test_too_many_abandoned_threads_stop_the_worker(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()

    def hang(payload: Payload, ctx: JobContext) -> None:
        time.sleep(1.0)

    registry.register("ops.hang", hang, timeout_s=0.1)
    ids = [e.job_id for e in client.enqueue_many([NewJob(type="ops.hang", payload={})] * 3)]
    config = fast(concurrency=1, max_abandoned=0)

    async def main() -> WorkerReport:
        return await asyncio.wait_for(Worker(jobforge_db.dsn, registry, config).run(), LIMIT_S)

    began = time.monotonic()
    report = asyncio.run(main())  # returns by itself: nobody called stop()

    assert time.monotonic() - began < 3
    assert report.stopped_because is not None
    assert "did not stop" in report.stopped_because
    assert "limit 0" in report.stopped_because
    assert report.counts["claimed"] == 1
    assert report.counts["abandoned"] == 1
    statuses = [client.get(i).status for i in ids]
    assert statuses.count(JobState.QUEUED) == 3  # the first retried, the others never claimed
    assert sorted(client.get(i).attempts for i in ids) == [0, 0, 1]


# cancellation


def test_canceling_a_running_async_job_cancels_its_handler_and_runs_compensation(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    started = threading.Event()
    saw: list[str | None] = []
    compensated: list[tuple[Payload, str | None]] = []

    async def long(payload: Payload, ctx: JobContext) -> str:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            saw.append(ctx.stop_reason)
            raise
        return "never"

    async def undo(payload: Payload, ctx: JobContext) -> None:
        compensated.append((payload, ctx.stop_reason))

    registry.register("ops.long", long, on_cancel=undo)
    job_id = client.enqueue("ops.long", {"order": 9}).job_id

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> float:
        await until(started.is_set, what="the handler to start")
        canceled_at = time.monotonic()
        assert await queue.cancel(job_id) is JobState.CANCELED
        await until(lambda: bool(saw), what="the handler to be cancelled")
        seen_after = time.monotonic() - canceled_at
        await until(has_event(queue, job_id, "cancel_acknowledged"), what="the acknowledgement")
        return seen_after

    report, seen_after = run_worker(jobforge_db.dsn, registry, fast(lease_s=1.5), scenario)

    assert seen_after < 1.5  # the next heartbeat (every 0.5 s) brought the cancellation
    assert saw == ["canceled"]
    assert compensated == [({"order": 9}, "canceled")]
    job = client.get(job_id)
    assert job.status is JobState.CANCELED
    events = client.events(job_id)
    assert [e.kind for e in events] == ["created", "claimed", "canceled", "cancel_acknowledged"]
    assert events[-1].data == {"compensation": "ok"}
    assert events[-1].worker == "w1"
    assert [(a.attempt, a.outcome) for a in client.attempts(job_id)] == [(1, "canceled")]
    assert report.counts["canceled"] == 1
    assert report.counts["succeeded"] == report.counts["lost"] == 0


def test_a_canceled_sync_handler_sees_the_flag_and_its_late_result_changes_nothing(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    started = threading.Event()
    returned = threading.Event()
    saw: list[tuple[bool, str | None]] = []

    def long(payload: Payload, ctx: JobContext) -> Payload:
        started.set()
        seen = ctx.cancelled.wait(5)
        saw.append((seen, ctx.stop_reason))
        returned.set()
        return {"late": True}

    def undo(payload: Payload, ctx: JobContext) -> None:
        raise RuntimeError("cannot undo the transfer")

    registry.register("ops.long", long, on_cancel=undo)
    job_id = client.enqueue("ops.long", {}).job_id

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> None:
        await until(started.is_set, what="the handler to start")
        await queue.cancel(job_id)
        await until(returned.is_set, timeout_s=3, what="the handler to see the flag")
        await until(has_event(queue, job_id, "cancel_acknowledged"), what="the acknowledgement")

    report, _ = run_worker(jobforge_db.dsn, registry, fast(lease_s=1.5, cancel_grace_s=4), scenario)

    assert saw == [(True, "canceled")]
    job = client.get(job_id)
    assert job.status is JobState.CANCELED
    assert client.result(job_id) is None  # the late result was not recorded
    events = client.events(job_id)
    assert [e.kind for e in events] == ["created", "claimed", "canceled", "cancel_acknowledged"]
    data = events[-1].data
    assert data["compensation"] == "failed"
    assert data["error"]["type"] == "RuntimeError"
    assert data["error"]["message"] == "cannot undo the transfer"
    assert report.counts["canceled"] == 1
    assert report.counts["succeeded"] == 0
    assert report.counts["abandoned"] == 0  # it stopped within cancel_grace_s


def test_a_canceled_job_without_a_hook_records_no_compensation(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    started = threading.Event()

    async def long(payload: Payload, ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(10)

    registry.register("ops.long", long)
    job_id = client.enqueue("ops.long", {}).job_id

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> None:
        await until(started.is_set)
        await queue.cancel(job_id)
        await until(has_event(queue, job_id, "cancel_acknowledged"))

    run_worker(jobforge_db.dsn, registry, fast(lease_s=1.5), scenario)
    assert client.events(job_id)[-1].data == {"compensation": "none"}


def test_a_compensation_in_progress_at_shutdown_is_still_recorded(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    started = threading.Event()
    undoing = threading.Event()
    undone: list[int] = []

    async def long(payload: Payload, ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(10)

    async def undo(payload: Payload, ctx: JobContext) -> None:
        undoing.set()
        await asyncio.sleep(0.5)
        undone.append(ctx.job_id)

    registry.register("ops.long", long, on_cancel=undo)
    job_id = client.enqueue("ops.long", {}).job_id

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> None:
        await until(started.is_set)
        await queue.cancel(job_id)
        await until(undoing.is_set, what="the compensation to start")
        worker.stop()  # graceful: work in hand is finished within grace_s

    run_worker(jobforge_db.dsn, registry, fast(lease_s=1.5, grace_s=5), scenario, stop=False)

    assert undone == [job_id]
    events = client.events(job_id)
    assert [e.kind for e in events][-1] == "cancel_acknowledged"
    assert events[-1].data == {"compensation": "ok"}


# leases


@pytest.mark.slow
def test_heartbeats_keep_a_long_job_s_lease(client: QueueClient, jobforge_db: Database) -> None:
    registry = Registry()
    ran_by: list[str] = []
    started = threading.Event()

    async def long(payload: Payload, ctx: JobContext) -> str:
        ran_by.append(ctx.worker)
        started.set()
        await asyncio.sleep(3.5)  # three and a half lease lengths
        return "done"

    registry.register("ops.long", long)
    job_id = client.enqueue("ops.long", {}).job_id

    async def main() -> tuple[WorkerReport, WorkerReport]:
        first = Worker(jobforge_db.dsn, registry, fast(name="w1", lease_s=1))
        second = Worker(jobforge_db.dsn, registry, fast(name="w2", lease_s=1, listen=False))
        running = [asyncio.ensure_future(first.run())]
        try:
            await until(started.is_set)
            running.append(asyncio.ensure_future(second.run()))  # claims every <= 0.2 s
            queue = await AsyncQueueClient.connect(jobforge_db.dsn, tenant="acme")
            try:

                async def finished() -> bool:
                    return (await queue.get(job_id)).status is JobState.SUCCEEDED

                await until(finished, timeout_s=8, what="the job to succeed")
            finally:
                await queue.close()
        finally:
            first.stop()
            second.stop()
            reports = await asyncio.wait_for(asyncio.gather(*running), LIMIT_S)
        return reports[0], reports[1]

    first, second = asyncio.run(main())

    assert ran_by == ["w1"]
    assert client.result(job_id) == "done"
    assert [(a.attempt, a.worker, a.outcome) for a in client.attempts(job_id)] == [
        (1, "w1", "succeeded")
    ]
    assert kinds(client, job_id) == ["created", "claimed", "succeeded"]
    assert first.counts["succeeded"] == 1
    assert second.counts["claimed"] == 0


def test_a_lease_taken_over_stops_the_handler_and_counts_it_lost(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    started = threading.Event()
    saw: list[str | None] = []
    compensated: list[int] = []

    async def long(payload: Payload, ctx: JobContext) -> str:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            saw.append(ctx.stop_reason)
            raise
        return "never"

    def undo(payload: Payload, ctx: JobContext) -> None:
        compensated.append(ctx.job_id)

    registry.register("ops.long", long, on_cancel=undo)
    job_id = client.enqueue("ops.long", {}).job_id
    later = datetime.now(UTC) + timedelta(hours=1)
    thief: list[Job] = []

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> None:
        await until(started.is_set)
        (taken,) = await queue.claim("thief", 1, now=later, lease_s=30)
        assert taken.id == job_id
        thief.append(taken)
        await until(lambda: worker.metrics.counts["lost"] == 1, what="the lost lease")

    report, _ = run_worker(jobforge_db.dsn, registry, fast(lease_s=1.5), scenario)

    assert saw == ["lease_lost"]
    assert compensated == []  # a lost lease is not a cancellation
    job = client.get(job_id)
    assert job.status is JobState.RUNNING
    assert job.lease_holder == "thief"
    assert job.attempts == 2
    assert [(a.attempt, a.worker, a.outcome) for a in client.attempts(job_id)] == [
        (1, "w1", "lease_expired"),
        (2, "thief", None),
    ]
    assert [(e.kind, e.worker) for e in client.events(job_id)] == [
        ("created", None),
        ("claimed", "w1"),
        ("lease_expired", "w1"),
        ("claimed", "thief"),
    ]
    assert report.counts["lost"] == 1
    assert report.counts["succeeded"] == report.counts["retried"] == 0
    assert report.counts["canceled"] == 0
    # the new holder still finishes it, with the token its claim gave it (the table keeps only
    # a digest of it, which finishes nothing)
    secret = thief[0].lease_token
    assert secret is not None
    assert job.lease_token == lease_id(secret)
    forged = Outcome(job_id=job_id, lease_token=job.lease_token, outcome="succeeded", result=1)
    assert client.finish("thief", [forged]) == {job_id: "lost"}
    done = forged.model_copy(update={"lease_token": secret})
    assert client.finish("thief", [done]) == {job_id: "succeeded"}


def test_a_result_arriving_after_the_lease_was_taken_over_is_dropped(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    started = threading.Event()
    taken_over = threading.Event()

    def slow(payload: Payload, ctx: JobContext) -> Payload:
        started.set()
        taken_over.wait(5)
        return {"stale": True}

    registry.register("ops.slow", slow)
    job_id = client.enqueue("ops.slow", {}).job_id
    later = datetime.now(UTC) + timedelta(hours=1)

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> None:
        await until(started.is_set)
        await queue.claim("thief", 1, now=later, lease_s=30)
        taken_over.set()
        await until(lambda: worker.metrics.counts["lost"] == 1, what="the lost outcome")

    # a 30 s lease: no heartbeat before the result, the finish call itself finds the lease gone
    report, _ = run_worker(jobforge_db.dsn, registry, fast(lease_s=30), scenario)

    job = client.get(job_id)
    assert job.status is JobState.RUNNING
    assert job.lease_holder == "thief"
    assert client.result(job_id) is None
    assert "succeeded" not in kinds(client, job_id)
    assert [(a.worker, a.outcome) for a in client.attempts(job_id)] == [
        ("w1", "lease_expired"),
        ("thief", None),
    ]
    assert report.counts["lost"] == 1
    assert report.counts["succeeded"] == 0


# progress


def _sync_progress(payload: Payload, ctx: JobContext) -> str:
    for pct in range(1, 50):
        ctx.progress(pct, f"step {pct}")
        time.sleep(0.01)
    ctx.progress(50, "half")
    time.sleep(0.4)  # the latest value gets written
    try:
        ctx.progress(150)
    except ValueError as exc:
        return str(exc)
    return "no error"


async def _async_progress(payload: Payload, ctx: JobContext) -> str:
    for pct in range(1, 50):
        ctx.progress(pct, f"step {pct}")
        await asyncio.sleep(0.01)
    ctx.progress(50, "half")
    await asyncio.sleep(0.4)
    try:
        ctx.progress(-1)
    except ValueError as exc:
        return str(exc)
    return "no error"


@pytest.mark.parametrize("fn", [_sync_progress, _async_progress], ids=["sync", "async"])
def test_progress_is_written_at_most_every_progress_interval(
    client: QueueClient, jobforge_db: Database, fn: Callable[..., Any]
) -> None:
    registry = Registry()
    registry.register("ops.progress", fn)
    job_id = client.enqueue("ops.progress", {}).job_id
    drain(jobforge_db.dsn, registry, fast(progress_s=0.2), timeout_s=LIMIT_S)

    assert "between 0 and 100" in client.result(job_id)
    progress = [e for e in client.events(job_id) if e.kind == "progress"]
    # about 0.9 s of handler time at one write per 0.2 s, instead of 50 calls
    assert 1 <= len(progress) <= 6, len(progress)
    assert progress[-1].data == {"pct": 50, "message": "half"}
    assert progress[-1].worker == "w1"
    assert progress[-1].attempt == 1
    pcts = [e.data["pct"] for e in progress]
    assert pcts == sorted(pcts)
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(progress)]
    assert all(gap > 0.1 for gap in gaps), gaps
    job = client.get(job_id)
    assert (job.progress_pct, job.progress_message) == (50, "half")


# middleware


def test_middleware_wraps_handlers_outermost_first(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    trail: list[Any] = []

    async def outer(ctx: JobContext, call_next: Next) -> Any:
        trail.append(("outer in", ctx.job.type, ctx.attempt, ctx.tenant_id))
        try:
            result = await call_next(ctx)
        except Exception as exc:
            trail.append(("outer saw", type(exc).__name__))
            raise
        trail.append("outer out")
        return {"wrapped": result}

    async def inner(ctx: JobContext, call_next: Next) -> Any:
        trail.append("inner in")
        try:
            result = await call_next(ctx)
        except LookupError as exc:
            raise NonRetryable(f"translated: {exc}") from exc
        trail.append("inner out")
        return result

    def ok(payload: Payload, ctx: JobContext) -> int:
        trail.append("handler")
        return 1

    def lookup(payload: Payload, ctx: JobContext) -> None:
        raise KeyError("sku")

    registry.register("mw.ok", ok)
    registry.register("mw.lookup", lookup)
    ok_id = client.enqueue("mw.ok", {}).job_id
    report = drain(jobforge_db.dsn, registry, fast(), middleware=[outer, inner], timeout_s=LIMIT_S)
    assert trail == [
        ("outer in", "mw.ok", 1, "acme"),
        "inner in",
        "handler",
        "inner out",
        "outer out",
    ]
    assert client.result(ok_id) == {"wrapped": 1}
    assert report.counts["succeeded"] == 1

    trail.clear()
    lookup_id = client.enqueue("mw.lookup", {}).job_id
    report = drain(jobforge_db.dsn, registry, fast(), middleware=[outer, inner], timeout_s=LIMIT_S)
    assert trail == [
        ("outer in", "mw.lookup", 1, "acme"),
        "inner in",
        ("outer saw", "NonRetryable"),
    ]
    job = client.get(lookup_id)
    assert job.status is JobState.FAILED  # classified after translation: not retried
    assert job.error["kind"] == "non_retryable"
    assert job.error["message"] == "translated: 'sku'"
    assert report.counts["failed"] == 1


# graceful stop


def test_stop_lets_jobs_finish_within_grace_then_releases_the_rest(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    started: set[str] = set()
    stop_called = threading.Event()
    saw: list[str | None] = []
    runs: list[str] = []

    async def finishing(payload: Payload, ctx: JobContext) -> str:
        started.add("finishing")
        await until(stop_called.is_set)
        await asyncio.sleep(0.1)
        return "finished within grace"

    async def hanging(payload: Payload, ctx: JobContext) -> str:
        runs.append(f"attempt {ctx.attempt}")
        if len(runs) > 1:
            return "second run"
        started.add("hanging")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            saw.append(ctx.stop_reason)
            raise
        return "never"

    registry.register("ops.finishing", finishing)
    registry.register("ops.hanging", hanging)
    finishing_id = client.enqueue("ops.finishing", {}).job_id
    hanging_id = client.enqueue("ops.hanging", {}).job_id

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> float:
        await until(lambda: started == {"finishing", "hanging"})
        worker.stop()
        stop_called.set()
        return time.monotonic()

    report, stopped_at = run_worker(
        jobforge_db.dsn, registry, fast(grace_s=0.6), scenario, stop=False
    )
    shutdown_s = time.monotonic() - stopped_at

    assert 0.5 < shutdown_s < 4, shutdown_s
    assert client.result(finishing_id) == "finished within grace"
    assert saw == ["shutdown"]
    job = client.get(hanging_id)
    assert job.status is JobState.QUEUED
    assert job.attempts == 0  # the attempt was given back
    assert job.lease_holder is None
    assert job.run_at <= datetime.now(UTC)
    assert kinds(client, hanging_id) == ["created", "claimed", "released"]
    assert [(a.attempt, a.outcome) for a in client.attempts(hanging_id)] == [(1, "released")]
    assert report.counts["released"] == 1
    assert report.counts["succeeded"] == 1

    # due at once, and the next run is attempt 1 again
    drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)
    assert runs == ["attempt 1", "attempt 1"]
    assert client.result(hanging_id) == "second run"


def test_at_the_end_of_the_grace_a_sync_handler_that_watches_the_flag_is_not_abandoned(
    client: QueueClient, jobforge_db: Database
) -> None:
    """A thread cannot be interrupted: told to stop when the grace runs out, a sync handler gets
    a short notice to see ctx.cancelled and return (its lease released, not counted abandoned);
    one deaf to it is abandoned after the notice, and the worker exits all the same."""
    registry = Registry()
    started: set[str] = set()
    saw: list[str | None] = []
    deaf_done = threading.Event()

    def watching(payload: Payload, ctx: JobContext) -> str:
        started.add("watching")
        assert ctx.cancelled.wait(30), "never told to stop"
        saw.append(ctx.stop_reason)
        return "stopped"

    def deaf(payload: Payload, ctx: JobContext) -> str:
        started.add("deaf")
        deaf_done.wait(30)
        return "late"

    registry.register("ops.watching", watching)
    registry.register("ops.deaf", deaf)
    watching_id = client.enqueue("ops.watching", {}).job_id
    deaf_id = client.enqueue("ops.deaf", {}).job_id

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> float:
        await until(lambda: started == {"watching", "deaf"})
        worker.stop()
        return time.monotonic()

    try:
        report, stopped_at = run_worker(
            jobforge_db.dsn, registry, fast(grace_s=0.3), scenario, stop=False
        )
        shutdown_s = time.monotonic() - stopped_at
    finally:
        deaf_done.set()

    assert saw == ["shutdown"]
    assert report.counts["abandoned"] == 1  # the deaf one only
    assert report.counts["released"] == 2
    assert 1.0 < shutdown_s < 5, shutdown_s  # the grace, then the notice
    for job_id in (watching_id, deaf_id):
        job = client.get(job_id)
        assert (job.status, job.attempts, job.lease_holder) == (JobState.QUEUED, 0, None)
        assert kinds(client, job_id) == ["created", "claimed", "released"]


def test_a_second_stop_cuts_the_grace_period_short(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    started = threading.Event()

    def waiting(payload: Payload, ctx: JobContext) -> None:
        started.set()
        ctx.cancelled.wait(10)

    registry.register("ops.waiting", waiting)
    job_id = client.enqueue("ops.waiting", {}).job_id

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> float:
        await until(started.is_set)
        worker.stop()
        await asyncio.sleep(0.3)
        worker.stop()
        return time.monotonic()

    report, second_stop = run_worker(
        jobforge_db.dsn, registry, fast(grace_s=30), scenario, stop=False
    )

    assert time.monotonic() - second_stop < 3
    assert client.get(job_id).status is JobState.QUEUED
    assert kinds(client, job_id)[-1] == "released"
    assert report.counts["released"] == 1


# claiming


def test_a_notification_wakes_an_idle_worker(client: QueueClient, jobforge_db: Database) -> None:
    registry = Registry()
    started = threading.Event()

    def note(payload: Payload, ctx: JobContext) -> None:
        started.set()

    registry.register("ops.note", note)

    def listening() -> bool:
        with jobforge_db.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
            ).fetchone()
            return row is not None and row[0] > 0

    async def scenario(worker: Worker, queue: AsyncQueueClient) -> float:
        await until(lambda: asyncio.to_thread(listening), what="the worker to LISTEN")
        await asyncio.sleep(0.1)  # the fetch loop is asleep for poll_min_s (5 s) now
        enqueued = time.monotonic()
        await queue.enqueue("ops.note", {})
        await until(started.is_set, what="the job to run")
        return time.monotonic() - enqueued

    config = fast(poll_min_s=5, poll_max_s=10)
    report, delay = run_worker(jobforge_db.dsn, registry, config, scenario)
    assert delay < 1.0, delay
    assert report.counts["succeeded"] == 1


def test_only_registered_and_selected_types_are_claimed(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()

    def one(payload: Payload, ctx: JobContext) -> str:
        return "one"

    def two(payload: Payload, ctx: JobContext) -> str:
        return "two"

    registry.register("a.one", one)
    registry.register("a.two", two)
    one_id = client.enqueue("a.one", {}).job_id
    two_id = client.enqueue("a.two", {}).job_id
    other_id = client.enqueue("b.other", {}).job_id

    report = drain(jobforge_db.dsn, registry, fast(types=["a.two"]), timeout_s=LIMIT_S)
    assert report.counts["claimed"] == 1
    assert client.result(two_id) == "two"
    assert client.get(one_id).status is JobState.QUEUED

    report = drain(jobforge_db.dsn, registry, fast(), timeout_s=LIMIT_S)
    assert report.counts["claimed"] == 1
    assert client.result(one_id) == "one"
    other = client.get(other_id)
    assert other.status is JobState.QUEUED  # no handler: never claimed
    assert other.attempts == 0
    assert kinds(client, other_id) == ["created"]


def test_unknown_selected_types_and_an_empty_registry_are_configuration_errors(
    jobforge_db: Database,
) -> None:
    registry = Registry()

    def one(payload: Payload, ctx: JobContext) -> None:
        return None

    registry.register("a.one", one)
    with pytest.raises(errors.ConfigurationError, match=r"no handler for job type\(s\) zzz"):
        drain(jobforge_db.dsn, registry, fast(types=["zzz"]), timeout_s=LIMIT_S)
    with pytest.raises(errors.ConfigurationError, match="no handlers"):
        drain(jobforge_db.dsn, Registry(), fast(), timeout_s=LIMIT_S)


def test_drain_runs_what_is_due_and_leaves_later_jobs_queued(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    ran: list[int] = []

    async def work(payload: Payload, ctx: JobContext) -> int:
        ran.append(payload["i"])
        await asyncio.sleep(0.05)
        if payload["i"] == 99:
            raise RuntimeError("try again later")
        return int(payload["i"])

    registry.register("ops.work", work)
    later = datetime.now(UTC) + timedelta(hours=1)
    due = [
        e.job_id
        for e in client.enqueue_many([NewJob(type="ops.work", payload={"i": i}) for i in range(20)])
    ]
    scheduled = client.enqueue("ops.work", {"i": 1000}, run_at=later).job_id
    retrying = client.enqueue("ops.work", {"i": 99}).job_id

    async def main() -> WorkerReport:
        queue = await AsyncQueueClient.connect(jobforge_db.dsn, tenant="acme")
        try:
            return await drain_async(
                queue, registry, fast(concurrency=4, grace_s=0), timeout_s=LIMIT_S
            )  # no grace: it returns only once nothing runs
        finally:
            await queue.close()

    began = time.monotonic()
    report = asyncio.run(main())

    assert time.monotonic() - began < 5
    assert sorted(ran) == [*range(20), 99]
    assert [client.result(i) for i in due] == list(range(20))
    assert client.get(scheduled).status is JobState.QUEUED
    assert client.get(scheduled).attempts == 0
    assert client.get(retrying).status is JobState.QUEUED  # its retry is not due yet
    assert report.counts["succeeded"] == 20
    assert report.counts["retried"] == 1


# metrics


def _fetch_metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        body: bytes = answer.read()
        return body.decode()


def test_metrics_are_served_over_http(client: QueueClient, jobforge_db: Database) -> None:
    registry = Registry()

    def ok(payload: Payload, ctx: JobContext) -> None:
        if payload.get("fail"):
            raise NonRetryable("no")

    registry.register("ops.ok", ok)
    client.enqueue_many([NewJob(type="ops.ok", payload={"i": i}) for i in range(2)])
    client.enqueue("ops.ok", {"fail": True})
    port = free_port()
    metrics = Metrics()
    metrics.serve(port, "wm")

    async def main() -> WorkerReport:
        config = fast(name="wm", exit_when_idle=True, listen=False)
        worker = Worker(jobforge_db.dsn, registry, config, metrics=metrics)
        return await asyncio.wait_for(worker.run(), LIMIT_S)

    report = asyncio.run(main())
    body = _fetch_metrics(port)

    assert report.counts["succeeded"] == 2
    assert 'jobforge_jobs_claimed_total{type="ops.ok",worker="wm"} 3.0' in body
    assert 'jobforge_jobs_succeeded_total{type="ops.ok",worker="wm"} 2.0' in body
    assert 'jobforge_jobs_failed_total{type="ops.ok",worker="wm"} 1.0' in body
    assert 'jobforge_handler_seconds_count{type="ops.ok",worker="wm"} 3.0' in body
    assert metrics.by_type["succeeded", "ops.ok"] == 2


def test_the_queue_gauges_are_served_from_the_stats_query(
    client: QueueClient, jobforge_db: Database
) -> None:
    """The gauges the worker refreshes: jobs by type and state summed over tenants, the oldest
    due job, leases, dead in 24 h; a type that empties out leaves the gauges."""
    client.enqueue_many([NewJob(type="ops.ok", payload={"i": i}) for i in range(3)])
    client.enqueue("ops.later", {}, run_at=datetime.now(UTC) + timedelta(hours=1))
    with QueueClient.connect(jobforge_db.dsn, tenant="other", max_size=1) as other:
        other.enqueue("ops.ok", {})
    port = free_port()
    metrics = Metrics()
    metrics.serve(port, "wg")

    async def read(until_due: int) -> None:
        reader = await AsyncQueueClient.connect(jobforge_db.dsn, max_size=1)
        task = asyncio.ensure_future(
            gauge_loop(reader, metrics=metrics, worker="wg", interval_s=0.05)
        )
        try:
            await until(
                lambda: metrics.queue is not None and metrics.queue.totals["due"] == until_due,
                what="the gauges",
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await reader.close()

    asyncio.run(read(4))
    body = _fetch_metrics(port)
    assert 'jobforge_queue_jobs{state="due",type="ops.ok"} 4.0' in body
    assert 'jobforge_queue_jobs{state="scheduled",type="ops.later"} 1.0' in body
    assert "jobforge_queue_oldest_due_seconds " in body
    assert "jobforge_queue_leases_expiring 0.0" in body
    assert "jobforge_queue_dead_24h 0.0" in body
    assert "succeeded" not in {line.split('state="')[1].split('"')[0]
                               for line in body.splitlines() if 'state="' in line}  # fmt: skip
    with QueueClient.connect(jobforge_db.dsn, tenant="other", max_size=1) as other:
        other.cancel(other.list_jobs().jobs[0].id)
    for job in client.list_jobs(type=["ops.ok"]).jobs:
        client.cancel(job.id)
    asyncio.run(read(0))
    body = _fetch_metrics(port)
    assert 'state="due"' not in body
    assert 'jobforge_queue_jobs{state="canceled",type="ops.ok"} 4.0' in body


def test_the_metrics_export_counts_abandoned_threads(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()

    def stuck(payload: Payload, ctx: JobContext) -> None:
        time.sleep(0.5)

    registry.register("ops.stuck", stuck, timeout_s=0.1)
    client.enqueue("ops.stuck", {})
    port = free_port()
    metrics = Metrics()
    metrics.serve(port, "wa")
    config = fast(name="wa", exit_when_idle=True, listen=False)

    async def main() -> WorkerReport:
        worker = Worker(jobforge_db.dsn, registry, config, metrics=metrics)
        return await asyncio.wait_for(worker.run(), LIMIT_S)

    report = asyncio.run(main())
    assert report.counts["abandoned"] == 1
    body = _fetch_metrics(port)
    assert 'jobforge_jobs_timed_out_total{type="ops.stuck",worker="wa"} 1.0' in body
    assert 'jobforge_jobs_abandoned_total{type="",worker="wa"} 1.0' in body


def test_a_taken_metrics_port_is_a_configuration_error() -> None:
    with socket.socket() as sock:
        sock.bind(("", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(errors.ConfigurationError, match=f"cannot serve metrics on port {port}"):
            Metrics().serve(port, "w1")


class Outage(AsyncQueueClient):
    """A client whose heartbeats fail while `down` is set: a network blip longer than a lease."""

    down: bool = False

    async def heartbeat_each(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise ConnectionError("the network is down")
        return await super().heartbeat_each(*args, **kwargs)


def test_a_job_this_worker_takes_over_from_itself_runs_to_success_once(
    client: QueueClient, jobforge_db: Database
) -> None:
    """Its own expired lease is claimed again by the same worker (heartbeats failed for longer
    than the lease): the old attempt learns it lost the lease and stops, the new attempt
    heartbeats and succeeds, and the job ends succeeded, not dead (max_attempts 2)."""
    registry = Registry()
    runs: list[int] = []
    saw: list[str | None] = []

    async def slow(payload: Payload, ctx: JobContext) -> str:
        runs.append(ctx.attempt)
        if ctx.attempt == 1:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                saw.append(ctx.stop_reason)
                raise
        await asyncio.sleep(1.2)  # outlives a lease: it must keep heartbeating
        return "done"

    registry.register("ops.slow", slow)
    job_id = client.enqueue("ops.slow", {}, max_attempts=2).job_id
    config = fast(lease_s=0.8, heartbeat_s=0.2, concurrency=2)

    async def main() -> WorkerReport:
        queue = await Outage.connect(jobforge_db.dsn)
        assert isinstance(queue, Outage)
        queue.down = True
        worker = Worker(queue, registry, config, metrics=Metrics())
        running = asyncio.ensure_future(worker.run())
        try:
            await until(lambda: len(runs) == 2, timeout_s=10, what="the second attempt")
            queue.down = False
            await until(lambda: worker.metrics.counts["succeeded"] == 1, timeout_s=10)
            await until(lambda: worker.metrics.counts["lost"] == 1, timeout_s=5)
            worker.stop()
            return await asyncio.wait_for(running, LIMIT_S)
        finally:
            if not running.done():
                worker.stop()
                worker.stop()
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(running, 10)
            await queue.close()

    report = asyncio.run(main())
    assert runs == [1, 2]
    assert saw == ["lease_lost"]
    job = client.get(job_id)
    assert (job.status, job.attempts) == (JobState.SUCCEEDED, 2)
    assert [(a.attempt, a.outcome) for a in client.attempts(job_id)] == [
        (1, "lease_expired"),
        (2, "succeeded"),
    ]
    assert (report.counts["succeeded"], report.counts["lost"], report.counts["dead"]) == (1, 1, 0)
