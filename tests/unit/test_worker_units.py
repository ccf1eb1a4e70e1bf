"""The worker's parts without a database: registry, config checks, job context, cancel flag,
thread slots, middleware chain, JSON logs."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from jobforge import errors
from jobforge.queue import Job, Outcome, calls
from jobforge.states import JobState
from jobforge.worker import JobContext, Next, Registry, Worker, WorkerConfig
from jobforge.worker.admission import Policy, admit_now, timeout_for
from jobforge.worker.context import CancelFlag
from jobforge.worker.logs import JsonFormatter, job_fields
from jobforge.worker.middleware import chain
from jobforge.worker.registry import HandlerSpec
from jobforge.worker.threads import ThreadSlots

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Payload = dict[str, Any]


def make_job(**fields: Any) -> Job:
    base: dict[str, Any] = {
        "id": 7,
        "tenant_id": "acme",
        "project": "default",
        "type": "ops.scan",
        "payload": {"a": 1},
        "payload_hash": "sha256:00",
        "status": JobState.RUNNING,
        "priority": 0,
        "run_at": T0,
        "attempts": 2,
        "max_attempts": 3,
        "lease_token": uuid4(),
        "trace_id": "trace-1",
        "created_at": T0,
        "updated_at": T0,
    }
    return Job(**{**base, **fields})


def handler(payload: Payload, ctx: JobContext) -> None:
    return None


def other_handler(payload: Payload, ctx: JobContext) -> None:
    return None


async def async_handler(payload: Payload, ctx: JobContext) -> None:
    return None


# registry


@pytest.mark.parametrize(
    "bad", ["", "Ops.Scan", "ops scan", "ops/scan", "a" * 201, "ops.scan\n", "\nops.scan"]
)
def test_a_bad_job_type_is_refused(bad: str) -> None:
    with pytest.raises(errors.ConfigurationError, match="is invalid: use 1-200 of"):
        Registry().register(bad, handler)


def test_a_type_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(errors.ConfigurationError, match="is invalid"):
        Registry().register(42, handler)  # type: ignore[arg-type]


def test_a_handler_must_be_callable() -> None:
    with pytest.raises(errors.ConfigurationError, match=r"'ops\.scan' is not callable: 'nope'"):
        Registry().register("ops.scan", "nope")  # type: ignore[arg-type]


def test_a_type_has_one_handler() -> None:
    registry = Registry()
    registry.register("ops.scan", handler)
    registry.register("ops.scan", handler)  # the same function again: fine (a re-import)
    with pytest.raises(errors.ConfigurationError, match=r"already has a handler: .*\.handler"):
        registry.register("ops.scan", other_handler)
    assert registry.get("ops.scan").fn is handler
    assert len(registry) == 1


@pytest.mark.parametrize("timeout", [0, -1, float("nan")])
def test_a_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"timeout of 'ops\.scan' must be positive"):
        Registry().register("ops.scan", handler, timeout_s=timeout)


@pytest.mark.parametrize("backoff", [(0, 1), (2, 1), (-1, 5), (1,)])
def test_a_backoff_is_base_and_cap_seconds(backoff: tuple[float, float]) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"backoff of 'ops\.scan' must be \(base"):
        Registry().register("ops.scan", handler, backoff_s=backoff)


def test_retry_outcomes_are_finished_in_one_call_per_backoff() -> None:
    def outcome(job_id: int, kind: str, backoff: tuple[float, float] | None) -> Outcome:
        return Outcome(job_id=job_id, lease_token=uuid4(), outcome=kind,  # type: ignore[arg-type]
                       backoff_s=backoff)  # fmt: skip

    outcomes = [outcome(1, "retry", (40.0, 40.0)), outcome(2, "succeeded", None),
                outcome(3, "retry", None), outcome(4, "retry", (40.0, 40.0))]  # fmt: skip
    batches = calls.finish_batches("w1", outcomes, None, (1.0, 3600.0))
    assert [(p["ids"], p["backoff_base_s"], p["backoff_cap_s"]) for (_, p), _ in batches] == [
        ([1, 4], 40.0, 40.0),
        ([2, 3], 1.0, 3600.0),
    ]
    assert [positions for _, positions in batches] == [[0, 3], [1, 2]]
    answers = [[{"state": "retry_scheduled"}, {"state": "dead"}],
               [{"state": "succeeded"}, {"state": "lost"}]]  # fmt: skip
    assert calls.in_order(4, [[0, 3], [1, 2]], answers) == [
        "retry_scheduled", "succeeded", "lost", "dead"
    ]  # fmt: skip


def test_registered_specs_and_the_decorator() -> None:
    registry = Registry()
    registry.register("b.sync", handler, timeout_s=1.5)

    @registry.handler("a.async")
    async def decorated(payload: Payload, ctx: JobContext) -> None:
        return None

    assert decorated.__name__ == "decorated"  # the decorator returns the function itself
    assert registry.get("a.async").is_async
    assert not registry.get("b.sync").is_async
    assert registry.get("b.sync").timeout_s == 1.5
    assert registry.types() == ["a.async", "b.sync"]
    assert "a.async" in registry
    assert "c" not in registry


def test_types_narrowing() -> None:
    registry = Registry()
    registry.register("a.one", handler)
    registry.register("a.two", async_handler)
    assert registry.types(["a.two", "a.two"]) == ["a.two"]
    assert registry.types([]) == []
    with pytest.raises(
        errors.ConfigurationError,
        match=r"no handler for job type\(s\) x, y \(registered: a.one, a.two\)",
    ):
        registry.types(["a.one", "x", "y"])
    with pytest.raises(errors.ConfigurationError, match=r"\(registered: none\)"):
        Registry().types(["x"])


def test_update_merges_registries_and_keeps_the_one_handler_rule() -> None:
    first, second = Registry(), Registry()
    first.register("a.one", handler)
    second.register("a.two", async_handler, timeout_s=2)
    first.update(second)
    assert first.types() == ["a.one", "a.two"]
    assert first.get("a.two").timeout_s == 2
    clash = Registry()
    clash.register("a.one", other_handler)
    with pytest.raises(errors.ConfigurationError, match="already has a handler"):
        first.update(clash)


# worker config


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"concurrency": 0}, "concurrency must be positive"),
        ({"lease_s": 0}, "lease_s must be positive"),
        ({"lease_s": float("nan")}, "lease_s must be positive"),
        ({"poll_min_s": 0}, "poll_min_s must be positive"),
        ({"poll_max_s": -1}, "poll_max_s must be positive"),
        ({"progress_s": 0}, "progress_s must be positive"),
        ({"max_jobs": 0}, "max_jobs must be positive"),
        ({"heartbeat_s": 30}, "heartbeat_s must be positive and shorter than lease_s"),
        ({"heartbeat_s": 0}, "heartbeat_s must be positive and shorter than lease_s"),
        ({"lease_s": 5, "heartbeat_s": 6}, "heartbeat_s must be positive and shorter"),
        ({"grace_s": -1}, "must not be negative"),
        ({"cancel_grace_s": -0.5}, "must not be negative"),
        ({"max_abandoned": -1}, "must not be negative"),
    ],
)
def test_worker_config_problems(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=f"^worker: .*{message}"):
        WorkerConfig(**fields).checked()


@pytest.mark.parametrize("timeout", [0, -2.0])
def test_a_default_timeout_must_be_positive(timeout: float) -> None:
    """As for a handler's own timeout: a zero default would time every job out at once."""
    with pytest.raises(errors.ConfigurationError, match="default_timeout_s"):
        WorkerConfig(default_timeout_s=timeout).checked()


def test_worker_config_reports_every_problem_and_the_worker_checks_it() -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        WorkerConfig(concurrency=0, lease_s=-1, grace_s=-1).checked()
    message = str(caught.value)
    assert "concurrency must be positive; lease_s must be positive" in message
    assert "must not be negative" in message
    with pytest.raises(errors.ConfigurationError, match="concurrency must be positive"):
        Worker("dbname=unused", Registry(), WorkerConfig(concurrency=0))
    config = WorkerConfig(lease_s=3, heartbeat_s=1, grace_s=0, max_abandoned=0)
    assert config.checked() is config


# job context


def test_job_context_exposes_the_job() -> None:
    job = make_job()
    ctx = JobContext(job=job, worker="w1")
    assert (ctx.job_id, ctx.tenant_id, ctx.attempt, ctx.trace_id) == (7, "acme", 2, "trace-1")
    assert not ctx.cancelled.is_set()
    assert ctx.stop_reason is None


@pytest.mark.parametrize("pct", [-0.01, 100.5, -1, 1000, float("nan"), float("inf")])
def test_progress_out_of_bounds_is_refused(pct: float) -> None:
    ctx = JobContext(job=make_job(), worker="w1")
    with pytest.raises(ValueError, match="between 0 and 100"):
        ctx.progress(pct)
    assert ctx.take_progress() is None


def test_progress_keeps_the_latest_value_until_taken() -> None:
    ctx = JobContext(job=make_job(), worker="w1")
    ctx.progress(0)
    ctx.progress(12.5, "loading")
    ctx.progress(100, "done")
    assert ctx.take_progress() == (100.0, "done")
    assert ctx.take_progress() is None


def test_the_first_stop_reason_wins() -> None:
    ctx = JobContext(job=make_job(), worker="w1")
    ctx.stop("canceled")
    ctx.stop("shutdown")
    assert ctx.stop_reason == "canceled"
    assert ctx.cancelled.is_set()


# cancel flag


def test_cancel_flag_wakes_a_waiting_thread() -> None:
    flag = CancelFlag()
    woke: list[tuple[bool, float]] = []

    def wait() -> None:
        began = time.monotonic()
        woke.append((flag.wait(5), time.monotonic() - began))

    waiters = [threading.Thread(target=wait) for _ in range(3)]
    for thread in waiters:
        thread.start()
    time.sleep(0.1)
    assert woke == []
    assert not flag.is_set()
    flag.set()
    for thread in waiters:
        thread.join(5)
    assert [seen for seen, _ in woke] == [True, True, True]
    assert all(0.05 < took < 2 for _, took in woke), woke


def test_cancel_flag_wait_times_out_and_returns_at_once_once_set() -> None:
    flag = CancelFlag()
    began = time.monotonic()
    assert flag.wait(0.05) is False
    assert time.monotonic() - began >= 0.04
    flag.set()
    flag.set()  # idempotent
    assert flag.is_set()
    began = time.monotonic()
    assert flag.wait(5) is True
    assert flag.wait() is True
    assert time.monotonic() - began < 0.5
    early = CancelFlag()
    early.set()  # set before anyone waits: no event is needed
    assert early.wait(0) is True


# thread slots


def run(coro_fn: Callable[[], Any]) -> Any:
    """Run an async scenario with an overall timeout."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), 10)

    return asyncio.run(bounded())


async def poll(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_thread_slots_run_calls_and_hand_back_results_and_errors() -> None:
    async def scenario() -> None:
        slots = ThreadSlots(2)
        try:
            ok = slots.submit(lambda x: x * 2, 21)
            assert await ok.future == 42
            bad = slots.submit(int, "x")
            with pytest.raises(ValueError, match="invalid literal"):
                await bad.future
            names = await asyncio.gather(
                *[slots.submit(lambda: threading.current_thread().name).future for _ in range(4)]
            )
            assert all(name.startswith("jobforge-job") for name in names)
            assert threading.current_thread().name not in names
        finally:
            slots.close()

    run(scenario)


def test_abandoning_a_stuck_call_frees_its_slot() -> None:
    async def scenario() -> None:
        slots = ThreadSlots(1)
        release = threading.Event()
        try:
            stuck = slots.submit(release.wait, 5)
            await asyncio.sleep(0.05)
            assert slots.abandon(stuck) is True
            assert slots.abandon(stuck) is False  # once
            assert (slots.abandoned, slots.abandoned_total) == (1, 1)
            # the one slot is free again: a replacement thread runs the next calls
            assert await asyncio.wait_for(slots.submit(lambda: "next").future, 2) == "next"
            assert await asyncio.wait_for(slots.submit(lambda: "again").future, 2) == "again"
            release.set()
            await poll(lambda: slots.abandoned == 0)
            assert slots.abandoned_total == 1
            assert await asyncio.wait_for(slots.submit(lambda: "after").future, 2) == "after"
            assert slots.abandon(stuck) is False  # it has returned
        finally:
            release.set()
            slots.close()

    run(scenario)


def test_a_call_abandoned_before_it_started_never_runs() -> None:
    async def scenario() -> None:
        slots = ThreadSlots(1)
        release = threading.Event()
        ran: list[str] = []
        try:
            busy = slots.submit(release.wait, 5)
            waiting = slots.submit(ran.append, "waiting")
            await asyncio.sleep(0.05)
            assert slots.abandon(waiting)
            await poll(lambda: slots.abandoned == 0)
            release.set()
            assert await asyncio.wait_for(busy.future, 2) is True
            assert await asyncio.wait_for(slots.submit(ran.append, "later").future, 2) is None
            assert ran == ["later"]
        finally:
            release.set()
            slots.close()

    run(scenario)


def test_abandoned_calls_do_not_count_against_the_size() -> None:
    """Two slots, one call abandoned: two more calls still run side by side."""

    async def scenario() -> None:
        slots = ThreadSlots(2)
        release = threading.Event()
        try:
            stuck = slots.submit(release.wait, 5)
            await asyncio.sleep(0.05)
            slots.abandon(stuck)
            meet = threading.Barrier(2, timeout=1)
            first = slots.submit(meet.wait)
            second = slots.submit(meet.wait)
            both = await asyncio.wait_for(asyncio.gather(first.future, second.future), 5)
            assert sorted(both) == [0, 1]
        finally:
            release.set()
            slots.close()

    run(scenario)


# middleware


def settle(awaitable: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(awaitable, 10)

    return asyncio.run(main())


def test_the_middleware_chain_runs_the_first_one_outermost() -> None:
    trail: list[str] = []

    def named(name: str) -> Any:
        async def mw(ctx: JobContext, call_next: Next) -> Any:
            trail.append(f"{name} in")
            result = await call_next(ctx)
            trail.append(f"{name} out")
            return [name, result]

        return mw

    async def inner(ctx: JobContext) -> Any:
        trail.append("inner")
        return ctx.job_id

    ctx = JobContext(job=make_job(), worker="w1")
    call = chain([named("a"), named("b"), named("c")], inner)
    assert settle(call(ctx)) == ["a", ["b", ["c", 7]]]
    assert trail == ["a in", "b in", "c in", "inner", "c out", "b out", "a out"]
    assert chain([], inner) is inner


def test_a_middleware_may_short_circuit_and_see_errors() -> None:
    seen: list[str] = []

    async def cached(ctx: JobContext, call_next: Next) -> Any:
        return "from cache"

    async def observe(ctx: JobContext, call_next: Next) -> Any:
        try:
            return await call_next(ctx)
        except RuntimeError as exc:
            seen.append(str(exc))
            raise

    async def failing(ctx: JobContext) -> Any:
        raise RuntimeError("inner failed")

    ctx = JobContext(job=make_job(), worker="w1")
    assert settle(chain([cached, observe], failing)(ctx)) == "from cache"
    assert seen == []
    with pytest.raises(RuntimeError, match="inner failed"):
        settle(chain([observe], failing)(ctx))
    assert seen == ["inner failed"]


# logs


def test_json_logs_carry_the_job_fields() -> None:
    job = make_job()
    logger = logging.getLogger("jobforge.worker.test")
    record = logger.makeRecord(
        logger.name, logging.WARNING, __file__, 1, "job %d failed", (7,), None,
        extra=job_fields(job, "w1"),
    )  # fmt: skip
    body = json.loads(JsonFormatter().format(record))
    assert body["message"] == "job 7 failed"
    assert body["level"] == "warning"
    assert body["logger"] == "jobforge.worker.test"
    assert {k: body[k] for k in ("worker", "job_id", "job_type", "tenant_id", "trace_id")} == {
        "worker": "w1",
        "job_id": 7,
        "job_type": "ops.scan",
        "tenant_id": "acme",
        "trace_id": "trace-1",
    }
    assert body["attempt"] == 2
    assert "exception" not in body


def test_json_logs_leave_out_missing_fields_and_include_the_exception() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "jobforge.worker", logging.ERROR, __file__, 1, "stopped", None, exc_info
    )
    record.worker = "w1"
    line = JsonFormatter().format(record)
    assert "\n" not in line  # one object a line
    body = json.loads(line)
    assert body["worker"] == "w1"
    assert "job_id" not in body
    assert "trace_id" not in body
    assert "ValueError: bad" in body["exception"]


# tracebacks


def test_a_stored_traceback_starts_at_the_worker_s_call_into_the_handler() -> None:
    """Frames of jobforge.worker and jobforge.runtime above the call into other code are left
    out, with a line saying so; the call site stays, and so do what the handler calls and the
    chained causes."""
    from pathlib import Path

    from jobforge.worker import outcomes

    glue = str(Path(outcomes.__file__).parent / "glue_probe.py")
    scope: dict[str, Any] = {}
    source = (
        "def outer(fn):\n    try:\n        middle(fn)\n    except Exception as exc:\n"
        "        return exc\n"
        "def middle(fn):\n    inner(fn)\n"
        "def inner(fn):\n    fn()\n"
        "def fail():\n    try:\n        raise RuntimeError('inside')\n"
        "    except RuntimeError as exc:\n        return exc\n"
    )
    exec(compile(source, glue, "exec"), scope)

    def handler() -> None:
        found: dict[str, int] = {}
        try:
            found["missing"]
        except KeyError as exc:
            raise ValueError("boom") from exc

    caught = scope["outer"](handler)
    text = outcomes.handler_traceback(caught)
    own = text[text.rindex("Traceback (most recent call last):") :]  # after the cause's block
    frames = [line for line in own.splitlines() if line.startswith("  File ")]
    assert len(frames) == 2
    assert "glue_probe.py" in frames[0]
    assert "in inner" in frames[0]  # the call site
    assert "in handler" in frames[1]
    assert "  (2 frames of jobforge's worker left out)" in own.splitlines()[1]
    assert "KeyError: 'missing'" in text  # the cause is kept
    assert text.rstrip().endswith("ValueError: boom")
    assert outcomes.error_record("exception", caught)["traceback"] == text

    # nothing but the worker's own frames: all of them are kept, and nothing is said
    inside = outcomes.handler_traceback(scope["fail"]())
    assert "glue_probe.py" in inside
    assert "left out" not in inside
    assert inside.rstrip().endswith("RuntimeError: inside")


def _spec(**fields: Any) -> HandlerSpec:
    async def noop(payload: dict[str, Any], ctx: JobContext) -> None:
        return None

    return HandlerSpec(type="ops.x", fn=noop, is_async=True, **fields)


@pytest.mark.parametrize(
    ("spec", "policy"),
    [
        ({"signed": True}, {}),
        ({}, {"require_signatures": True}),
        ({"requires_scopes": ("jobs:run",)}, {}),
    ],
)
def test_a_job_with_something_to_verify_is_not_admitted_without_the_database(
    spec: dict[str, Any], policy: dict[str, Any]
) -> None:
    assert admit_now(make_job(), _spec(**spec), Policy(**policy)) is None


def test_a_job_with_nothing_to_verify_is_admitted_at_once_with_its_timeout() -> None:
    job = make_job(envelope={"timeout_s": 5})
    admission = admit_now(job, _spec(timeout_s=30), Policy())
    assert admission == timeout_for(_spec(timeout_s=30), job, Policy().default_timeout_s)
    assert (admission.timeout_s, admission.timeout_source, admission.verified) == (5, "job", True)


def test_a_harness_admits_even_a_signed_job_at_once_and_says_it_verified_nothing() -> None:
    admission = admit_now(make_job(), _spec(signed=True), Policy(verify=False))
    assert admission is not None
    assert (admission.verified, admission.timeout_s, admission.timeout_source) == (
        False, 60.0, "default",
    )  # fmt: skip


@pytest.mark.parametrize("asked", [10**400, -(10**400), float("inf"), float("nan"), True, "5"])
def test_a_timeout_a_job_asks_for_that_is_no_finite_positive_number_is_the_bounds(
    asked: Any,
) -> None:
    """A tenant writes the envelope: whatever it holds, the job runs under its type's bound."""
    admission = timeout_for(_spec(timeout_s=30), make_job(envelope={"timeout_s": asked}), 60.0)
    assert (admission.timeout_s, admission.timeout_source) == (30, "runner")
