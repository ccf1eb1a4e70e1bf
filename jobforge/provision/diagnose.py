"""What `jobforge doctor` checks: the provisioning decision of a server for scratch databases,
then a real round trip through it; and, read only, the database commands act on."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from jobforge import db, errors, migrate
from jobforge.provision.choose import plan, provide_server
from jobforge.provision.databases import Template


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    used: bool = True  # False: a path looked at and passed over (not a failure)


@dataclass
class Report:
    """The doctor's findings; `ok` is False when any check failed."""

    provider: str | None
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def diagnose(
    *, scratch_url: str | None = None, provider: str | None = None, start: bool = True
) -> Report:
    """Look at every path to a server for scratch databases (`scratch_url`, given by
    --scratch-database-url, else the normal plan); with `start`, provision one, build its
    template and clone a database. The database commands act on is `inspect_database`'s."""
    source = "--scratch-database-url"
    try:
        decided = plan(database_url=scratch_url, provider=provider, url_source=source)
    except (errors.ProvisionError, errors.ConfigurationError) as exc:
        return Report(None, [Check("provisioning", False, str(exc))])
    report = Report(decided.choice)
    for step in decided.steps:
        used = step.provider == decided.choice
        report.checks.append(Check(f"path: {step.provider}", True, step.reason, used=used))
    if not start:
        return report
    began = time.perf_counter()
    try:
        server = provide_server(database_url=scratch_url, provider=provider, url_source=source)
    except errors.JobforgeError as exc:
        report.checks.append(Check("scratch server", False, str(exc)))
        return report
    try:
        report.figures["server_start_s"] = round(time.perf_counter() - began, 3)
        with db.connect(server.dsn) as conn:
            version = db.scalar(conn, "server_version")
        report.checks.append(
            Check("scratch server", True, f"{server.describe()}, PostgreSQL {version}")
        )
        _template(report, server.dsn)
    except errors.JobforgeError as exc:
        report.checks.append(Check("fresh database", False, str(exc)))
    finally:
        server.stop()
    return report


def shipped() -> str:
    """`N shipped, latest NAME`: the migrations of this jobforge."""
    files = migrate.discover()
    return f"{len(files)} shipped, latest {files[-1].name if files else '(none)'}"


def inspect_database(report: Report, dsn: str, source: str) -> bool:
    """Read-only checks of the database commands act on (`source`: where its URL came from):
    it answers (a FAIL naming host and port when not), and its migrations (pending or changed
    ones FAIL, naming what to run). Creates nothing there. True when it is up to date."""
    files = migrate.discover()
    latest = files[-1].name if files else "(none)"
    try:
        where = f"{db.describe(dsn)} (from {source})"
        with db.connect(dsn) as conn:
            version = db.scalar(conn, "server_version")
    except errors.JobforgeError as exc:
        report.checks.append(Check("database", False, f"{exc} (URL from {source})"))
        return False
    report.checks.append(Check("database", True, f"{where}, PostgreSQL {version}"))
    denied = f"this login may not read jobforge.schema_migrations in the database {where}"
    try:
        with db.connect(dsn) as conn, db.readable_or(denied):
            state = migrate.status(conn, files)
    except errors.JobforgeError as exc:
        report.checks.append(Check("migrations", False, str(exc)))
        return False
    pending = ", ".join(m.name for m in state.pending)
    detail = (
        f"{len(state.applied)} applied, up to date (latest {latest})"
        if state.up_to_date
        else f"{len(state.applied)} applied, {len(state.pending)} pending: {pending}; "
        + migrate.fix_command(source)
    )
    report.checks.append(Check("migrations", state.up_to_date, detail))
    return state.up_to_date


def _template(report: Report, dsn: str) -> None:
    began = time.perf_counter()
    template = Template(dsn).ensure()
    report.figures["template_ready_s"] = round(time.perf_counter() - began, 3)
    began = time.perf_counter()
    clone = template.create()
    template.drop(clone)
    report.figures["fresh_db_ms"] = round((time.perf_counter() - began) * 1000, 1)
    report.checks.append(
        Check("fresh database", True, f"migrated template {template.name}; clone + drop "
              f"{report.figures['fresh_db_ms']} ms")
    )  # fmt: skip
