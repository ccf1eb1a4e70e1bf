"""A runner's declared retry policy and attempts reach the queue: the worker schedules a
runner's retries with the runner's backoff (each outcome of a mixed batch with its own), and
`runner_job` enqueues with the runner's max_attempts and checks the input first; on a real
throwaway Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import BaseModel

from jobforge.contracts import RUNNERS, RetryPolicy, runner
from jobforge.errors import InvalidInput
from jobforge.produce import runner_job
from jobforge.provision import Database
from jobforge.queue import NewJob, QueueClient
from jobforge.runtime.context import RunContext
from jobforge.states import JobState
from jobforge.worker import JobContext, Registry, WorkerConfig, drain
from jobforge.worker.runners import register_runner


class In(BaseModel):
    n: int


class Out(BaseModel):
    n: int


@runner("policy.slow_retry", version="1.0.0", input=In, output=Out, max_attempts=7,
        retry=RetryPolicy(base_s=40.0, cap_s=40.0))  # fmt: skip
def slow_retry(inp: In, ctx: RunContext) -> Out:
    raise ValueError(f"boom {inp.n}")


@pytest.fixture
def client(jobforge_db: Database) -> Iterator[QueueClient]:
    with QueueClient.connect(jobforge_db.dsn, tenant="acme") as queue:
        yield queue


def test_the_worker_backs_off_by_the_runner_s_retry_policy(
    client: QueueClient, jobforge_db: Database
) -> None:
    registry = Registry()
    register_runner(registry, RUNNERS["policy.slow_retry"])

    def plain(payload: dict[str, int], ctx: JobContext) -> None:
        raise ValueError("boom")

    registry.register("policy.plain", plain)  # no policy: the client's backoff (1 s base)
    jobs = [
        runner_job(RUNNERS["policy.slow_retry"], {"n": 1}),
        NewJob(type="policy.plain", payload={}),
    ]
    runner_job_id, plain_id = (e.job_id for e in client.enqueue_many(jobs))
    # both outcomes are finished in one batch, each with its own backoff
    config = WorkerConfig(name="w1", concurrency=2, completion_flush_s=0.5, poll_min_s=0.02)
    report = drain(jobforge_db.dsn, registry, config, timeout_s=20)
    assert report.counts["retried"] == 2

    for job_id, low, high in ((runner_job_id, 20.0, 40.0), (plain_id, 0.5, 1.0)):
        job = client.get(job_id)
        assert job.status is JobState.QUEUED
        retry = client.events(job_id)[-1]
        assert retry.kind == "retry_scheduled"
        delay = job.run_at - retry.at
        # min(cap, base * 2^0), jittered into [50 %, 100 %]
        assert timedelta(seconds=low) <= delay <= timedelta(seconds=high), (job_id, delay)


def test_runner_job_takes_the_runner_s_max_attempts_unless_told(client: QueueClient) -> None:
    definition = RUNNERS["policy.slow_retry"]
    job = runner_job(definition, In(n=2))
    assert (job.type, job.payload, job.max_attempts) == ("policy.slow_retry", {"n": 2}, 7)
    assert runner_job(definition, {"n": 2}, max_attempts=1, priority=5).max_attempts == 1
    (enqueued,) = client.enqueue_many([job])
    assert client.get(enqueued.job_id).max_attempts == 7


def test_runner_job_refuses_bad_input_before_anything_is_stored(client: QueueClient) -> None:
    with pytest.raises(InvalidInput, match=r"invalid input for policy.slow_retry: n: .*integer"):
        runner_job(RUNNERS["policy.slow_retry"], {"n": "many"})
    assert client.list_jobs().jobs == []
