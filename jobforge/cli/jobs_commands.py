"""`jobforge enqueue` and `jobforge jobs list|show|cancel|retry`: the queue from a shell."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.measure import Measurement
from rich.table import Table

from jobforge import canonical, errors, validation
from jobforge.cli.bulk_command import bulk_action
from jobforge.cli.durations import parse_duration
from jobforge.cli.job_input import checked_job, read_input
from jobforge.cli.known_types import known_types
from jobforge.cli.options import ACTOR, DEFAULT_HELP, PROJECT, REASON, chosen_project, cli_actor
from jobforge.cli.output import MAX_ID, console, literal, notes, print_json
from jobforge.cli.stats_commands import stats
from jobforge.produce import check_job, sign_job
from jobforge.provision.target import chosen_tenant, ready_database_url
from jobforge.queue import Job, NewJob, QueueClient, audit, bulk, catalogue
from jobforge.queue.dry_run import DryRun, enqueue_dry_run
from jobforge.states import JobState

app = typer.Typer(help="Inspect and act on jobs (one tenant at a time).", no_args_is_help=True)

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_TENANT = typer.Option(None, "--tenant", help="Tenant (default: $JOBFORGE_TENANT).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
_ID = typer.Argument(..., metavar="ID", min=1, max=MAX_ID)


def _client(
    url: str | None,
    tenant: str | None,
    actor: str | None = None,
    reason: str | None = None,
    project: str | None = None,
) -> QueueClient:
    """The tenant's client, scoped to `project` (None: every project of the tenant), naming
    who acts (and why) on every event it writes."""
    chosen = chosen_tenant(tenant, required=True)
    who = cli_actor(actor)
    audit.acting(who, reason)  # a bad --actor or --reason is one line, before connecting
    return QueueClient.connect(
        ready_database_url(url), tenant=chosen, max_size=1, actor=who, reason=reason,
        project=project,
    )  # fmt: skip


def enqueue(
    job_type: str = typer.Argument(..., metavar="TYPE", help="Job type, e.g. ops.scan."),
    payload: str | None = typer.Argument(None, help="JSON object (default {})."),
    payload_file: Path | None = typer.Option(None, "--payload-file", help="Read the payload here."),
    key: str | None = typer.Option(None, "--key", help="Idempotency key."),
    priority: int = typer.Option(0, help="0 is claimed first."),
    run_at: datetime | None = typer.Option(None, help="Not before this time (ISO 8601)."),
    max_attempts: int | None = typer.Option(
        None, help="Attempts before the job is dead (default: its runner's max_attempts, or 3)."
    ),
    allow_unknown_type: bool = typer.Option(
        False,
        "--allow-unknown-type",
        help="Enqueue a type no runner of this repository handles (for workers elsewhere).",
    ),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    project: str | None = typer.Option(
        None,
        "--project",
        help="The job's project (default: $JOBFORGE_PROJECT, else default); idempotency keys "
        "are per project.",
    ),
    actor: str | None = ACTOR,
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Check everything (here and in the database), print the job it would enqueue, "
        "enqueue nothing.",
    ),
    as_json: bool = _JSON,
    sign: list[Path] | None = typer.Option(
        None, "--sign", metavar="KEYFILE",
        help="Sign the job with this ed25519 private key file (repeat for more signatures).",
    ),
    sign_key_id: list[str] | None = typer.Option(
        None, "--sign-key-id", metavar="KEY_ID",
        help="The registered id of each --sign key, in order (default: ed25519:<hex>).",
    ),
    expires: str = typer.Option(
        "1d", "--sign-ttl", help="How long the signatures hold past the later of now and --run-at."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.001, help="The job's own timeout in seconds, within its runner's."
    ),
    token: str | None = typer.Option(
        None, "--token", help="A policy token for an action runner (jobforge tokens issue)."
    ),
) -> None:  # fmt: skip
    """Enqueue one job; the same --key with the same payload returns the existing job.

    In a runner repository ([tool.jobforge] in pyproject.toml) the type must be one its runners
    or handlers handle, and a runner's payload must be valid input for it. A type whose code is
    not here but which the runner catalogue holds (jobforge runners sync) is checked against
    the catalogue instead: enabled, and the payload valid against its synced input schema."""
    body = read_input(payload, payload_file)
    chosen = chosen_project(project)
    source = f"--payload-file {payload_file}" if payload_file is not None else "the payload"
    fields: dict[str, Any] = {"idempotency_key": key, "priority": priority, "run_at": run_at,
                              "project": chosen}  # fmt: skip
    if max_attempts is not None:
        fields["max_attempts"] = max_attempts
    fields.update(timeout_s=timeout, token=token)
    # the payload, and a local runner's input model, are checked before anything is sent
    job = checked_job(job_type, body, source=source, allow_unknown_type=True, fields=fields)
    known = known_types()
    local = known is not None and job_type in known.types
    chosen_id = chosen_tenant(tenant, required=True)
    assert chosen_id is not None
    with _client(url, tenant, actor, project=chosen) as client:
        entry = None if local else client.catalogue_entry(job_type)
        if known is not None and not local and entry is None and not allow_unknown_type:
            raise errors.ConfigurationError(known.unknown_message(job_type, catalogued=True))
        if entry is not None:  # checked against the catalogue, before anything is stored
            try:
                catalogue.check_request(entry, job_type, body)
            except errors.InvalidJob as exc:
                raise errors.ConfigurationError(
                    f"{exc} ({source} checked against the runner catalogue's input schema)"
                ) from None
            # the runner's max_attempts unless --max-attempts, before signing: signed, it is
            # what the signatures cover, as with the runner's code here
            job = catalogue.with_declared_attempts(entry, job, given=max_attempts is not None)
        job = signed_job(job, chosen_id, sign or [], sign_key_id or [], expires)
        if local and known is not None and job_type in known.runners:
            try:  # what the worker would refuse is refused now: timeout, signature, token claims
                check_job(known.runners[job_type], job, tenant=chosen_id)
            except errors.InvalidJob as exc:
                raise errors.ConfigurationError(str(exc)) from None
        if dry_run:
            _say_dry_run(enqueue_dry_run(client, job), as_json)
            return
        (result,) = client.enqueue_many([job])
    if as_json:
        print_json(result.model_dump())
    else:
        console.print(f"job {result.job_id} {'enqueued' if result.created else 'already existed'}",
                      markup=False)  # fmt: skip


def signed_job(job: NewJob, tenant: str, keyfiles: Sequence[Path], key_ids: Sequence[str],
               ttl: str) -> NewJob:  # fmt: skip
    """The job signed with each key file (`--sign`), under its `--sign-key-id` if given."""
    if len(key_ids) > len(keyfiles):
        raise errors.ConfigurationError("--sign-key-id names more keys than --sign gives")
    if not keyfiles:
        return job
    seconds = parse_duration(ttl, "--sign-ttl")
    issued = datetime.now(UTC).replace(microsecond=0)
    later = max(issued, job.run_at) if job.run_at is not None else issued
    from jobforge import trust  # cryptography and PyJWT load only for a command that signs

    for index, path in enumerate(keyfiles):
        key = trust.load_private_key(path)
        key_id = key_ids[index] if index < len(key_ids) else None
        try:
            job = sign_job(job, tenant, key, key_id, issued_at=issued,
                           expires_at=later + timedelta(seconds=seconds))  # fmt: skip
        except ValidationError as exc:
            raise errors.ConfigurationError(f"--sign {path}: {validation.summary(exc)}") from None
    return job


def _say_dry_run(would: DryRun, as_json: bool) -> None:
    job = would.job
    shown = {
        "dry_run": True, "tenant": would.tenant, "type": job.type, "payload": job.payload,
        "priority": job.priority, "max_attempts": job.max_attempts,
        "run_at": job.run_at.isoformat() if job.run_at else None,
        "idempotency_key": job.idempotency_key,
        "would": "return the existing job" if would.existing is not None else "enqueue",
        "existing_job_id": would.existing,
    }  # fmt: skip
    if as_json:
        print_json(shown)
        return
    said = (
        f"dry run: would return the existing job {would.existing} (same key and payload)"
        if would.existing is not None
        else f"dry run: would enqueue a {job.type} job for tenant {would.tenant}"
    )
    console.print(said + "; nothing was enqueued", markup=False)
    console.print(json.dumps(shown, indent=2, default=str), markup=False)


def _say_state(job_id: int, state: str, as_json: bool) -> None:
    if as_json:
        print_json({"job_id": job_id, "status": state})
    else:
        console.print(f"job {job_id} {state}", markup=False)


@app.command("list")
def list_jobs(
    status: list[str] | None = typer.Option(None, "--status", help="Filter (repeatable)."),
    job_type: list[str] | None = typer.Option(None, "--type", help="Filter (repeatable)."),
    limit: int = typer.Option(50, min=1, max=1000),
    before: int | None = typer.Option(
        None, min=1, max=MAX_ID, help="Page: jobs with ids below this."
    ),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    project: str | None = PROJECT,
    as_json: bool = _JSON,
) -> None:
    """List jobs, newest first."""
    chosen = chosen_project(project)
    with _client(url, tenant, project=chosen) as client:
        page = client.list_jobs(
            status=status, type=job_type, before=before, limit=limit, project=chosen
        )
    if as_json:
        print_json(
            {
                "jobs": [job_json(j) for j in page.jobs],
                "next_before": page.next_before,
            }
        )
        return
    rows = [
        (str(job.id), job.type, job.project, job.status.value, f"{job.attempts}/{job.max_attempts}",
         job.run_at.isoformat(timespec="seconds"), job.updated_at.isoformat(timespec="seconds"))
        for job in page.jobs
    ]  # fmt: skip
    _print_rows(("id", "type", "project", "status", "attempts", "run_at", "updated_at"), rows)
    if page.next_before is not None:
        console.print(f"more: --before {page.next_before}", markup=False)
    if not rows and job_type:
        _note_unknown_types(job_type)


def _note_unknown_types(job_types: Sequence[str]) -> None:
    """An empty listing filtered by a type no runner or handler of this repository handles: a
    note on stderr, with a close name (a typo in --type would otherwise read as "no such jobs").
    Jobs of other workers' types are listed all the same: a note, never a refusal."""
    try:
        known = known_types()
    except errors.JobforgeError:  # a runner module that does not import: not this command's news
        return
    if known is None:
        return
    for job_type in job_types:
        if job_type not in known.types:
            close = known.closest(job_type)
            hint = f" (did you mean {close!r}?)" if close else ""
            notes.print(
                f"note: no runner or handler of this repository handles job type "
                f"{job_type!r}{hint}",
                markup=False, style="dim",
            )  # fmt: skip


def _print_rows(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """A table when it fits the console whole; else one line a row, so that no value (a job
    type with a typo above all) is ever cut short."""
    table = Table(*header)
    for row in rows:
        table.add_row(*map(literal, row))  # a value from the database is never markup
    natural = Measurement.get(console, console.options.update_width(100_000), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    widths = [max(len(line[i]) for line in (header, *rows)) for i in range(len(header))]
    for line in (header, *rows):
        text = "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
        console.print(literal(text))


@app.command()
def show(
    job_id: int = _ID,
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    project: str | None = PROJECT,
    as_json: bool = _JSON,
) -> None:
    """One job with its attempts, its result (once it succeeded) and its event log."""
    with _client(url, tenant, project=chosen_project(project)) as client:
        job, attempts, events = client.get(job_id), client.attempts(job_id), client.events(job_id)
        result = client.result(job_id) if job.status is JobState.SUCCEEDED else None
    if as_json:
        print_json({
            "job": job_json(job),
            "result": result,
            "attempts": [a.model_dump(mode="json") for a in attempts],
            "events": [e.model_dump(mode="json") for e in events],
        })  # fmt: skip
        return
    # the tenant's payload, an error's message, a worker's name: printed as written, never markup
    console.print(literal(
        f"job {job.id} ({job.type}) {job.status.value}, attempt {job.attempts}/{job.max_attempts}"
    ))  # fmt: skip
    console.print(literal(f"project: {job.project}"))
    console.print(literal(f"payload: {json.dumps(job.payload)}"))
    if job.envelope is not None:
        console.print(literal(f"envelope: {json.dumps(job_json(job)['envelope'])}"))
    if job.parent_id is not None:
        console.print(f"follow-up of job {job.parent_id}", markup=False)
    if job.status is JobState.SUCCEEDED:
        console.print(literal(f"result: {json.dumps(result)}"))
    if job.error is not None:
        _print_error(job.error)
    console.print("events:", markup=False)
    for event in events:
        who = f" by {event.worker}" if event.worker else ""
        who += f" (actor {json.dumps(event.actor)})" if event.actor else ""
        why = f": {json.dumps(event.reason)}" if event.reason else ""
        line = f"  {event.at.isoformat(timespec='milliseconds')} {event.kind}{who}{why}"
        console.print(literal(line))


def job_json(job: Job) -> dict[str, Any]:
    """A job as the CLI prints it: a policy token in its envelope as its SHA-256 only. Until a
    worker uses it, a token is a bearer credential, and nothing needs it printed."""
    data: dict[str, Any] = job.model_dump(mode="json")
    envelope = data.get("envelope")
    if isinstance(envelope, dict) and isinstance(envelope.get("token"), str):
        envelope["token_sha256"] = canonical.sha256_of(envelope.pop("token").encode())
    return data


def _print_error(error: Any) -> None:
    """`error: kind (type): message`, what else the error holds as JSON, then its traceback as
    the lines it was written in (JSON would show them as one line of `\\n`)."""
    if not isinstance(error, dict):
        console.print(literal(f"error: {json.dumps(error)}"))
        return
    rest = dict(error)
    kind, kind_of, message = rest.pop("kind", None), rest.pop("type", None), rest.pop("message", "")
    trace = rest.pop("traceback", None)
    head = " ".join(str(part) for part in (kind, f"({kind_of})" if kind_of else None) if part)
    first, *more = str(message).splitlines() or [""]
    console.print(literal(f"error: {head}: {first}" if head else f"error: {first}"))
    for line in more:
        console.print(literal(f"  {line}"))
    for key, value in rest.items():
        console.print(literal(f"  {key}: {json.dumps(value)}"))
    if isinstance(trace, str):
        for line in trace.rstrip("\n").splitlines():
            console.print(literal(f"  {line}"))
    elif trace is not None:
        console.print(literal(f"  traceback: {json.dumps(trace)}"))


_OPTIONAL_ID = typer.Argument(
    None, metavar="ID", min=1, max=MAX_ID, help="One job; leave out to act on a filter."
)
_STATUS = typer.Option(None, "--status", help="In bulk: jobs in this status (repeatable).")
_TYPES = typer.Option(None, "--type", help="In bulk: jobs of this type (repeatable).")
_DRY_RUN = typer.Option(
    False, "--dry-run", help="In bulk: count what would change, change nothing."
)
_BATCH = typer.Option(
    bulk.DEFAULT_BATCH, "--batch", help="In bulk: jobs per transaction (1-10000)."
)


@app.command()
def cancel(
    job_id: int | None = _OPTIONAL_ID,
    status: list[str] | None = _STATUS,
    job_type: list[str] | None = _TYPES,
    since: str | None = typer.Option(
        None, "--since", help="In bulk: enqueued in the last 30m, 1h, 2d… or since a date."
    ),
    dry_run: bool = _DRY_RUN,
    batch: int = _BATCH,
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    project: str | None = PROJECT,
    actor: str | None = ACTOR,
    reason: str | None = REASON,
    as_json: bool = _JSON,
) -> None:
    """Cancel a queued or running job (final; a running worker learns at its next heartbeat).

    Without ID, cancel every job of the tenant that matches the filter (--status queued by
    default, or running; --type; --since), in batches, each with its event."""
    if job_id is None or status or job_type or since is not None or dry_run:
        bulk_action("cancel", job_id, status, job_type, since, dry_run=dry_run, batch=batch,
                    reset_attempts=False, url=url, tenant=tenant, as_json=as_json,
                    actor=actor, reason=reason, project=project)  # fmt: skip
        return
    with _client(url, tenant, actor, reason, chosen_project(project)) as client:
        state = client.cancel(job_id)
    _say_state(job_id, state.value, as_json)


@app.command()
def retry(
    job_id: int | None = _OPTIONAL_ID,
    reset_attempts: bool = typer.Option(
        False, "--reset-attempts", help="Start counting attempts anew."
    ),
    status: list[str] | None = _STATUS,
    job_type: list[str] | None = _TYPES,
    since: str | None = typer.Option(
        None, "--since", help="In bulk: finished in the last 30m, 1h, 2d… or since a date."
    ),
    dry_run: bool = _DRY_RUN,
    batch: int = _BATCH,
    url: str | None = _URL,
    tenant: str | None = _TENANT,
    project: str | None = PROJECT,
    actor: str | None = ACTOR,
    reason: str | None = REASON,
    as_json: bool = _JSON,
) -> None:
    """Put a failed, dead or canceled job back in the queue.

    Without ID, retry every job of the tenant that matches the filter (--status dead by default,
    or failed, canceled; --type; --since), in batches, each with its event. A job that used all
    its attempts is skipped (and counted) unless --reset-attempts."""
    if job_id is None or status or job_type or since is not None or dry_run:
        bulk_action(
            "retry", job_id, status, job_type, since, dry_run=dry_run, batch=batch,
            reset_attempts=reset_attempts, url=url, tenant=tenant, as_json=as_json,
            actor=actor, reason=reason, project=project,
        )  # fmt: skip
        return
    with _client(url, tenant, actor, reason, chosen_project(project)) as client:
        try:
            state = client.reschedule(job_id, reset_attempts=reset_attempts)
        except errors.InvalidTransition as exc:  # the queue names its parameter; we, our flag
            message = (
                str(exc)
                .replace("reschedule it with reset_attempts", "retry it with --reset-attempts")
                .replace("reset_attempts", "--reset-attempts")
                .replace("can be rescheduled", "can be retried")
                .replace("used all 1 attempts", "used its 1 attempt")  # a schema before 0030
            )
            raise errors.InvalidTransition(message) from None
    _say_state(job_id, state.value, as_json)


# `jobforge jobs stats` is written beside `jobforge health` (the same counts); listed last.
app.command("stats")(stats)
