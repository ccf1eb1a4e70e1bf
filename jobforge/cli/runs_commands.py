"""`jobforge runs list|show|artifacts|export`: recorded runs in a database, their manifests and
artifacts, and bundles made from them."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import get_args

import typer
from rich.table import Table

from jobforge import errors
from jobforge.cli.durations import parse_since
from jobforge.cli.options import DEFAULT_HELP, PROJECT, chosen_project
from jobforge.cli.output import MAX_ID, console, counted, literal, notes, print_json
from jobforge.config import find_config
from jobforge.provision.target import chosen_tenant, ready_database_url
from jobforge.queue import QueueClient, RunRow
from jobforge.queue.artifact_files import Wanted, check_name, check_out, write_all
from jobforge.queue.store import ArtifactStore, MemoryStore, PostgresStore
from jobforge.replay.bundle import export as export_run
from jobforge.replay.bundle import from_record
from jobforge.runtime import manifest
from jobforge.runtime.record import RunStatus

app = typer.Typer(
    help="Recorded runs: list, show (JSON or a Markdown manifest), write out their artifacts, "
    "export as replay bundles.",
    no_args_is_help=True,
)

URL = typer.Option(None, "--database-url", help=f"Database holding the runs ({DEFAULT_HELP}).")
TENANT = typer.Option(
    None,
    "--tenant",
    help="Only this tenant's runs, held to it by row-level security (default: $JOBFORGE_TENANT;"
    " with neither, every tenant's runs, for a login allowed to read across tenants: a superuser"
    " or a member of jobforge_worker; any other login is refused).",
)
JOB = typer.Option(None, "--job", min=1, max=MAX_ID, help="Runs of this job id (repeatable).")
TYPE = typer.Option(None, "--type", help="Runs of this runner id (repeatable).")
STATUS = typer.Option(None, "--status", help="Runs with this status (repeatable).")
SINCE = typer.Option(None, "--since", help="Recorded in the last 30m, 1h, 2d… or since a date.")
LIMIT = typer.Option(100, "--limit", min=1, max=100_000, help="At most this many, newest first.")

#: What a run record's status may be (jobforge.run/1; the job_runs table's CHECK).
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)


def find(url: str | None, tenant: str | None, jobs: list[int] | None, types: list[str] | None,
         statuses: list[str] | None, since: str | None, limit: int,
         project: str | None = None) -> list[RunRow]:  # fmt: skip
    moment = parse_since(since)  # usage errors are told before any connection is tried
    for status in statuses or ():
        if status not in RUN_STATUSES:
            raise errors.ConfigurationError(
                f"unknown run status {status!r}: choose one of {', '.join(RUN_STATUSES)}"
            )
    chosen = chosen_tenant(tenant, required=False)
    scope = chosen_project(project)
    dsn = ready_database_url(url)
    with QueueClient.connect(dsn, tenant=chosen, max_size=1, project=scope) as client:
        return client.find_runs(job_ids=jobs or None, runner_ids=types, statuses=statuses,
                                since=moment, limit=limit, project=scope)  # fmt: skip


@app.command("list")
def list_runs(
    url: str | None = URL, tenant: str | None = TENANT, job: list[int] | None = JOB,
    runner_type: list[str] | None = TYPE, status: list[str] | None = STATUS,
    since: str | None = SINCE, limit: int = LIMIT, project: str | None = PROJECT,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:  # fmt: skip
    """List recorded runs, newest first."""
    rows = find(url, tenant, job, runner_type, status, since, limit, project)
    if as_json:
        print_json([row.model_dump(mode="json", exclude={"record"}) for row in rows])
        return
    table = Table(show_edge=False, header_style="bold")
    for column in ("run", "job", "attempt", "tenant", "project", "runner", "version", "status",
                   "recorded"):  # fmt: skip
        table.add_column(column)
    for r in rows:
        when = r.recorded_at.isoformat(timespec="seconds")
        cells = (r.id, r.job_id, r.attempt, r.tenant_id, r.project, r.runner_id,
                 r.runner_version, r.status, when)  # fmt: skip
        table.add_row(*map(literal, cells))  # what a run record says is never markup
    console.print(table)
    console.print(counted(len(rows), "run"), markup=False)


#: What `runs show --format` prints.
SHOW_FORMATS = ("json", "markdown")


def pick(rows: list[RunRow], job_id: int, attempt: int | None, run_id: int | None) -> RunRow:
    """The run asked for among a job's runs (newest first): of `run_id`, else of `attempt`,
    else the newest; a note when that attempt ran more than once."""
    if attempt is not None:
        rows = [r for r in rows if r.attempt == attempt]
    if run_id is not None:
        rows = [r for r in rows if r.id == run_id]
    if not rows:
        which = " ".join(
            part for part in (f"run {run_id} of" if run_id is not None else "",
                              f"attempt {attempt} of" if attempt is not None else "",
                              f"job {job_id}") if part
        )  # fmt: skip
        raise errors.RunNotFound(f"no recorded run for {which}")
    if len({r.id for r in rows if r.attempt == rows[0].attempt}) > 1 and run_id is None:
        others = ", ".join(str(r.id) for r in rows[1:] if r.attempt == rows[0].attempt)
        notes.print(
            f"note: attempt {rows[0].attempt} of job {job_id} ran more than once; this is run "
            f"{rows[0].id}, the newest (--run {others} for the others)",
            markup=False, style="dim",
        )  # fmt: skip
    return rows[0]


ATTEMPT = typer.Option(None, "--attempt", min=1, help="Which attempt (default: last).")
RUN = typer.Option(
    None,
    "--run",
    min=1,
    max=MAX_ID,
    help="Which stored run (the `run` column of `runs list`): an attempt "
    "number repeats when a job is retried with its attempts reset.",
)


@app.command("show")
def show(
    job_id: int = typer.Argument(..., metavar="JOB", min=1, max=MAX_ID, help="Job id."),
    attempt: int | None = ATTEMPT,
    run_id: int | None = RUN,
    url: str | None = URL,
    tenant: str | None = TENANT,
    fmt: str = typer.Option(
        "json",
        "--format",
        metavar="FORMAT",
        help="json (the run record) or markdown (a run manifest).",
    ),
) -> None:
    """Print the run record (jobforge.run/1) of one attempt of a job (its newest run), or with
    --format markdown its manifest: runner, job, attempt, status, timings, input, decisions,
    output, artifacts with sizes and hashes, fingerprints, errors."""
    if fmt not in SHOW_FORMATS:
        raise errors.ConfigurationError(
            f"--format {fmt[:40]!r}: choose one of {', '.join(SHOW_FORMATS)}"
        )
    rows = find(url, tenant, [job_id], None, None, None, 1000)
    row = pick(rows, job_id, attempt, run_id)
    if fmt == "markdown":
        text = manifest.render(row.record, job_id=row.job_id, tenant=row.tenant_id)
        console.print(text, markup=False, highlight=False, soft_wrap=True, end="")
        return
    console.print(json.dumps(row.record, indent=2, sort_keys=True), markup=False)


@app.command("artifacts")
def artifacts(
    job_id: int = typer.Argument(..., metavar="JOB", min=1, max=MAX_ID, help="Job id."),
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Folder to write the artifacts "
                             "into (made when missing); each goes under its name."),
    attempt: int | None = ATTEMPT,
    run_id: int | None = RUN,
    name: list[str] | None = typer.Option(
        None, "--name", help="Only this artifact (repeatable; default: all, with the run's log "
        "lines as @logs.jsonl)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite files already in --out."),
    url: str | None = URL,
    tenant: str | None = TENANT,
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:  # fmt: skip
    """Write the artifacts of one attempt of a job (its newest run) into a folder, each under its
    name, its sha256 verified as it is read: a file whose bytes do not match is not kept. A name
    that would leave the folder (`..`, absolute, through a symlink in it) is refused, and so is
    an existing file unless --force."""
    for wanted_name in name or ():  # usage errors, told before any connection is tried
        try:
            check_name(wanted_name)
        except errors.ArtifactError as exc:
            raise errors.ConfigurationError(f"--name: {exc}") from None
    check_out(out)
    rows = find(url, tenant, [job_id], None, None, None, 1000)
    row = pick(rows, job_id, attempt, run_id)
    where = f"attempt {row.attempt} of job {job_id}"
    dsn = ready_database_url(url)
    with QueueClient.connect(dsn, tenant=row.tenant_id, max_size=1) as client:
        refs = [a for a in client.job_artifacts(job_id) if a.run_id == row.id]
        store: ArtifactStore = PostgresStore(client)
        wanted = [Wanted(a.name, a.sha256, a.size) for a in refs]
        if not wanted:  # recorded before artifacts were stored: what the record kept inline
            store, wanted = _inline(row, where)
        if name:
            missing = sorted(set(name) - {w.name for w in wanted})
            if missing:
                raise errors.ArtifactNotFound(
                    f"no artifact {', '.join(missing)} in {where} "
                    f"(it has {', '.join(w.name for w in wanted)})"
                )
            wanted = [w for w in wanted if w.name in set(name)]
        written = write_all(store, row.tenant_id, wanted, out, force=force)
    if as_json:
        print_json([{"name": w.name, "path": str(w.path), "size": w.size, "sha256": w.sha256}
                    for w in written])  # fmt: skip
        return
    for w in written:
        console.print(f"wrote {w.path}  {w.size} bytes  {w.sha256}", markup=False)
    console.print(f"{counted(len(written), 'artifact')} written, each sha256 verified",
                  markup=False)  # fmt: skip


@app.command("export")
def export(
    url: str | None = URL, tenant: str | None = TENANT, job: list[int] | None = JOB,
    runner_type: list[str] | None = TYPE, status: list[str] | None = STATUS,
    since: str | None = SINCE, limit: int = LIMIT,
    out: Path | None = typer.Option(
        None, "--out", help="Bundle folder, wherever it is (default: [tool.jobforge] bundles_dir, "
        "or bundles/, which must resolve inside the project).",
    ),
    to: Path | None = typer.Option(
        None, "--to", help="Write golden cases into this golden folder instead of bundles."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a different file already at a run's file name."
    ),
) -> None:  # fmt: skip
    """Write recorded runs as replay bundles (or, with --to, as golden cases), one file per run,
    named for its job, attempt and run id. A file already holding the run is left unchanged; a
    different file at that name is kept (exit 1) unless --overwrite."""
    if not (job or runner_type or status or since):
        raise errors.ConfigurationError(
            "say which runs to export: --job, --type, --status or --since"
        )
    folder = None if to is not None else (out or _default_bundles())  # refused before connecting
    rows = find(url, tenant, job, runner_type, status, since, limit)
    if not rows:
        raise errors.RunNotFound("no recorded run matches")
    counts: Counter[str] = Counter()
    for row in rows:
        bundle = from_record(row.record, where=f"run {row.id} (job {row.job_id})")
        done = export_run(bundle, row.id, bundles=folder, golden=to, overwrite=overwrite)
        counts[done.outcome] += 1
        line = f"{_SAY[done.outcome]} {done.path}"
        if done.outcome == "kept":
            line += ": a different file is there (--overwrite replaces it)"
        console.print(line, markup=False)
    kind = "golden case" if to is not None else "bundle"
    summary = [f"{counted(counts['written'], kind)} written"]
    summary += [f"{counts[k]} {k}" for k in ("unchanged", "kept") if counts[k]]
    console.print(", ".join(summary), markup=False)
    if counts["kept"]:
        raise typer.Exit(1)


_SAY = {"written": "wrote", "unchanged": "unchanged", "kept": "kept"}


def _inline(row: RunRow, where: str) -> tuple[MemoryStore, list[Wanted]]:
    """The artifacts a run recorded before artifacts were stored (migrations/0017) kept inline
    (up to 64 KiB each; hashes verified when written out); one line when there is none, or one
    of those asked for was kept by its hash only."""
    store, wanted, hashed_only = MemoryStore(), [], []
    for item in row.record.get("artifacts") or []:
        content, sha = item.get("content"), str(item.get("sha256"))
        if content is None:
            hashed_only.append(str(item.get("name")))
            continue
        try:
            data = (base64.b64decode(content, validate=True) if item.get("encoding") == "base64"
                    else str(content).encode())  # fmt: skip
        except (ValueError, TypeError):
            data = b""  # not what its hash says: refused when it is written
        store.add(row.tenant_id, sha, data)
        wanted.append(Wanted(str(item.get("name")), sha, int(item.get("size", len(data)))))
    if not wanted:
        kept = f" (only the hashes of {', '.join(hashed_only)} were kept)" if hashed_only else ""
        raise errors.ArtifactNotFound(f"{where} has no stored artifacts{kept}")
    if hashed_only:
        notes.print(
            f"note: {where} was recorded before artifacts were stored: "
            f"{', '.join(hashed_only)} kept by hash only, not written",
            markup=False, style="dim",
        )  # fmt: skip
    return store, wanted


def _default_bundles() -> Path:
    """The project's bundles folder, refused when it resolves outside the project (a `bundles`
    symlink or a bundles_dir committed to the repository could point anywhere), as `--to golden`
    refuses a runner folder leading outside it. An explicit --out goes wherever it points."""
    config = find_config(Path.cwd())
    root = config.root if config else Path.cwd()
    folder = (config.root / config.bundles_dir) if config else Path("bundles")
    try:
        inside = folder.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        raise errors.ConfigurationError(
            f"refusing to write bundles into {folder}: it resolves outside the project {root} "
            "(a symlink?); pass --out FOLDER to write them there anyway"
        )
    return folder
