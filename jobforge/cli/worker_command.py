"""`jobforge worker`: run handlers from the given modules until stopped (SIGTERM/SIGINT)."""

from __future__ import annotations

import asyncio
import math
import signal

import typer

from jobforge import errors
from jobforge.cli.options import DEFAULT_HELP
from jobforge.cli.output import console
from jobforge.config import find_config
from jobforge.contracts import discover
from jobforge.provision.target import database_url, require_ready
from jobforge.runtime.http import DEFAULT_MAX_RESPONSE_BYTES, HttpPolicy
from jobforge.runtime.record import DEFAULT_SECRET_KEYS, Redactor
from jobforge.trust.tokens import TokenKeys
from jobforge.worker import Recorder, Worker, WorkerConfig, WorkerReport, logs
from jobforge.worker.loading import load_handlers
from jobforge.worker.loop import DEFAULT_CONCURRENCY, DEFAULT_PRUNE_EVERY_S
from jobforge.worker.scheduler import DEFAULT_SCHEDULES_EVERY_S


def worker(
    runners: list[str] | None = typer.Option(
        None,
        "--runners",
        help="Module(s) whose handlers to run (repeat the option); default: [tool.jobforge] "
        "runners of the project, and the jobforge.runners entry points.",
    ),
    concurrency: int = typer.Option(
        DEFAULT_CONCURRENCY, "--concurrency", min=1, max=10_000, help="Jobs at once."
    ),
    prefetch: int | None = typer.Option(
        None,
        "--prefetch",
        min=0,
        max=100_000,
        help="Jobs claimed ahead of the free slots, leased and waiting for one (default: as "
        "many as --concurrency; 0: claim only for free slots).",
    ),
    claim_batch: int | None = typer.Option(
        None, "--claim-batch", min=1, max=100_000, help="Most jobs one claim asks for."
    ),
    types: list[str] | None = typer.Option(None, "--types", help="Only these job types."),
    database_url_option: str | None = typer.Option(
        None, "--database-url", help=f"The queue's database ({DEFAULT_HELP})."
    ),
    name: str | None = typer.Option(None, "--name", help="Lease holder name (default host:pid)."),
    lease: float = typer.Option(30.0, "--lease", help="Lease length in seconds."),
    grace: float = typer.Option(10.0, "--grace", help="Seconds running jobs get at shutdown."),
    cancel_grace: float = typer.Option(
        5.0, "--cancel-grace", help="Seconds a sync handler gets to notice a cancellation."
    ),
    timeout: float = typer.Option(
        60.0, "--timeout", help="Timeout (s) of jobs whose handler and job name none."
    ),
    require_signatures: bool = typer.Option(
        False,
        "--require-signatures",
        help="Run only jobs whose ed25519 signatures verify, whatever their runner declares.",
    ),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", min=1, max=65535, help="Serve Prometheus on this TCP port."
    ),
    queue_gauges_every: float = typer.Option(
        30.0,
        "--queue-gauges-every",
        min=0,
        max=86_400,
        help="With --metrics-port: read the queue's gauges (jobs by type and state, oldest due,"
        " leases expiring, dead in 24 h) every this many seconds; 0: never.",
    ),
    log_format: str = typer.Option("text", "--log-format", help="text or json."),
    exit_when_idle: bool = typer.Option(
        False,
        "--exit-when-idle",
        help="Stop once nothing is due or running (a drain); a job due later, a retry "
        "waiting out its backoff too, is left queued.",
    ),
    max_jobs: int | None = typer.Option(
        None,
        "--max-jobs",
        min=1,
        help="Stop after this many jobs, once they are finished and recorded (recycling).",
    ),
    allow_hosts: list[str] | None = typer.Option(
        None, "--http-allow-host", help="Let runners' ctx.http reach this private host (repeat)."
    ),
    max_response_bytes: int = typer.Option(
        DEFAULT_MAX_RESPONSE_BYTES,
        "--http-max-response-bytes",
        min=1,
        help="The largest response body runners' ctx.http reads (default 10 MiB); a larger one "
        "fails the request (HttpResponseTooLarge).",
    ),
    secret_keys: list[str] | None = typer.Option(
        None, "--secret-key", help="Another key name to redact from run records (repeat)."
    ),
    record: bool = typer.Option(
        True, "--record/--no-record", help="Write a run record per attempt of each runner."
    ),
    prune: bool = typer.Option(
        True,
        "--prune/--no-prune",
        help="Take part in pruning finished jobs past their type's retention (jobforge "
        "retention), one worker at a time.",
    ),
    prune_every: float = typer.Option(
        DEFAULT_PRUNE_EVERY_S,
        "--prune-every",
        metavar="SECONDS",
        help="Start a prune pass at most this often, across all workers.",
    ),
    schedules: bool = typer.Option(
        True,
        "--schedules/--no-schedules",
        help="Fire due schedules (jobforge schedules), each slot once across all workers.",
    ),
    schedules_every: float = typer.Option(
        DEFAULT_SCHEDULES_EVERY_S,
        "--schedules-every",
        metavar="SECONDS",
        help="Look for due schedules this often (a slot fires within about this long).",
    ),
) -> None:
    """Claim and run jobs of the types the runner modules handle."""
    _seconds("--lease", lease, most=MAX_LEASE_S)
    _seconds("--grace", grace, zero=True)
    _seconds("--cancel-grace", cancel_grace, zero=True)
    _seconds("--timeout", timeout)
    _seconds("--prune-every", prune_every, most=MAX_PRUNE_EVERY_S)
    _seconds("--schedules-every", schedules_every, most=MAX_SCHEDULES_EVERY_S)
    if log_format not in ("text", "json"):
        raise errors.ConfigurationError(f"--log-format must be text or json, not {log_format!r}")
    logs.configure(log_format)
    dsn, source = database_url(database_url_option)
    policy = HttpPolicy(
        allow_hosts=frozenset(allow_hosts or ()),
        max_response_bytes=max_response_bytes,
        allow_hint="pass --http-allow-host {host} to jobforge worker",
    )
    if runners:
        registry = load_handlers(runners, http_policy=policy)
    else:
        project = find_config()
        discover(project)
        registry = load_handlers((), http_policy=policy)
        if not len(registry):
            where = (
                f"[tool.jobforge] runners of {project.root}" if project else "no [tool.jobforge]"
            )
            raise errors.ConfigurationError(
                f"no handlers to run: pass --runners MODULE ({where}, no jobforge.runners entry "
                "points)"
            )
    config = WorkerConfig(
        name=name,
        concurrency=concurrency,
        prefetch=prefetch,
        claim_batch=claim_batch,
        types=types or None,
        lease_s=lease,
        grace_s=grace,
        cancel_grace_s=cancel_grace,
        default_timeout_s=timeout,
        require_signatures=require_signatures,
        # policy tokens of action runners: JOBFORGE_TOKEN_KEYS (and JOBFORGE_TOKEN_AUDIENCE)
        token_keys=TokenKeys.from_env(),
        exit_when_idle=exit_when_idle,
        max_jobs=max_jobs,
        queue_gauges_s=queue_gauges_every or None,
        prune_every_s=prune_every if prune else None,
        schedules_every_s=schedules_every if schedules else None,
    )
    redactor = Redactor(keys=DEFAULT_SECRET_KEYS | set(secret_keys or ()))
    recorder = Recorder(redactor=redactor)
    # Once, at startup: no server or no schema is one line and exit 2, not a retry loop. A
    # running worker that loses the server retries (an outage passes); a schema that is gone
    # stops it (errors.SchemaNotReady from the claim).
    require_ready(dsn, source)
    runner = Worker(dsn, registry, config, middleware=[recorder] if record else [])
    if metrics_port is not None:
        runner.metrics.serve(metrics_port, runner.name)
    report = asyncio.run(_run(runner))
    counts = ", ".join(
        f"{k} {int(v)}" for k, v in report.counts.items() if v and k != "handler_seconds"
    )
    console.print(
        f"worker {report.name} stopped after {report.elapsed_s:.1f} s: {counts or 'no jobs'}",
        markup=False,
    )
    if report.stopped_because:
        raise errors.WorkerStopped(report.stopped_because)


#: The longest lease the queue grants (its claim refuses more).
MAX_LEASE_S = 86_400.0
#: The longest interval between prune passes the queue takes (a year).
MAX_PRUNE_EVERY_S = 31_536_000.0
#: The longest interval between schedule passes (an hour: slots would fire an hour late).
MAX_SCHEDULES_EVERY_S = 3600.0


def _seconds(flag: str, value: float | None, *, zero: bool = False,
             most: float | None = None) -> None:  # fmt: skip
    """A number of seconds given on the command line: finite, above 0 (or 0 too, with `zero`)
    and at most `most`; else one line naming the option, before anything starts."""
    if value is None:
        return
    above = value >= 0 if zero else value > 0
    if math.isfinite(value) and above and (most is None or value <= most):
        return
    want = "0 or more" if zero else "above 0"
    if most is not None:
        want += f", at most {most:g}"
    raise errors.ConfigurationError(f"{flag} takes a number of seconds {want}, not {value:g}")


async def _run(runner: Worker) -> WorkerReport:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    return await runner.run()
