"""A tenant's queue as the dashboard tests see it: dead jobs, a recorded run with an artifact and
a decision trace, a due job, and another tenant's job; and the dashboard served on a free port.

Runs are recorded by the real worker with the recorder; "the runner changed" is the same runner
definition with another function, as a deploy would make it (tests/integration/test_replay.py).
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from pydantic import BaseModel
from starlette.applications import Starlette

from jobforge.contracts import RUNNERS, RunnerDef, runner
from jobforge.dashboard.app import DashboardConfig
from jobforge.dashboard.auth import Identity
from jobforge.queue import QueueClient
from jobforge.runtime.context import RunContext
from jobforge.worker import Recorder, Registry, drain
from jobforge.worker.runners import register_runner

#: What a hostile producer put in a job's input: rendered as text, never as markup.
HOSTILE = "<script>alert('pwned')</script>"


class QuoteIn(BaseModel):
    sku: str
    qty: int = 1


class QuoteOut(BaseModel):
    total: float


@runner("dash.quote", version="1.0.0", input=QuoteIn, output=QuoteOut,
        trace_keys=["unit", "discount"], artifacts=["quote.txt"])  # fmt: skip
def quote(inp: QuoteIn, ctx: RunContext) -> QuoteOut:
    unit = ctx.decide("unit", 10.0, source="catalog")
    discount = ctx.decide("discount", 0.1 if inp.qty >= 10 else 0.0, rule="bulk >= 10")
    ctx.artifact("quote.txt", f"{inp.sku} x{inp.qty}\n")
    return QuoteOut(total=round(unit * inp.qty * (1 - discount), 2))


def quote_changed(inp: QuoteIn, ctx: RunContext) -> QuoteOut:
    """The same runner after someone changed the bulk rule."""
    unit = ctx.decide("unit", 10.0, source="catalog")
    discount = ctx.decide("discount", 0.2 if inp.qty >= 5 else 0.0, rule="bulk >= 5")
    ctx.artifact("quote.txt", f"{inp.sku} x{inp.qty}\n")
    return QuoteOut(total=round(unit * inp.qty * (1 - discount), 2))


def changed_runners() -> Mapping[str, RunnerDef]:
    return {"dash.quote": dataclasses.replace(RUNNERS["dash.quote"], fn=quote_changed)}


def _flaky(payload: object, ctx: object) -> None:
    raise RuntimeError("the upstream ledger refused the entry")


@dataclass(frozen=True)
class Seeded:
    dead: list[int]  #: tenant acme's dead jobs
    run_id: int  #: acme's recorded dash.quote run
    job_id: int  #: its job
    due: int  #: acme's job still queued and due
    other_job: int  #: tenant other's job
    other_run: int  #: tenant other's recorded run


def seed(dsn: str) -> Seeded:
    """Tenant acme: three dead `dash.ledger` jobs (one with a hostile input), one recorded
    `dash.quote` run; tenant other: one recorded run. Then one more acme job, left due."""
    with QueueClient.connect(dsn, tenant="acme") as acme, \
         QueueClient.connect(dsn, tenant="other") as other:  # fmt: skip
        dead = [acme.enqueue("dash.ledger", {"entry": e}, max_attempts=1).job_id
                for e in ("A-1", HOSTILE, "C-3")]  # fmt: skip
        job_id = acme.enqueue("dash.quote", {"sku": "A-1", "qty": 12}).job_id
        other_job = other.enqueue("dash.quote", {"sku": "Z-9", "qty": 1}).job_id
        registry = Registry()
        register_runner(registry, RUNNERS["dash.quote"])
        registry.register("dash.ledger", _flaky)
        report = drain(dsn, registry, middleware=[Recorder()])
        assert report.counts["succeeded"] == 2, report.counts
        due = acme.enqueue("dash.later", {"n": 1}).job_id
        (run,) = acme.find_runs(job_ids=[job_id])
        (other_run,) = other.find_runs(job_ids=[other_job])
        assert {acme.get(i).status.value for i in dead} == {"dead"}
    return Seeded(dead, run.id, job_id, due, other_job, other_run.id)


def config(dsn: str, server_dsn: str | None = None, **kw: object) -> DashboardConfig:
    """The dashboard of tenant acme acting as alice, replaying against the changed runner on
    the test session's server."""
    defaults: dict[str, object] = {
        "tenant": Identity("acme", "alice"), "runners": changed_runners,
        "replay_database_url": server_dsn, "pool_size": 2,
    }  # fmt: skip
    defaults.update(kw)
    return DashboardConfig(database_url=dsn, **defaults)  # type: ignore[arg-type]


@contextmanager
def served(app: Starlette) -> Iterator[str]:
    """The app served by uvicorn in a thread on a free port of 127.0.0.1; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))  # fmt: skip
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
