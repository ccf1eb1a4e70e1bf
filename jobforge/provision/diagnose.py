"""What `jobforge doctor` checks: the provisioning decision, then a real round trip through it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from jobforge import db, errors, migrate
from jobforge.provision.choose import URL_ENV, plan, provide_server
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
    *, database_url: str | None = None, provider: str | None = None, start: bool = True
) -> Report:
    """Look at every provisioning path; with `start`, provision a server and clone a database."""
    try:
        decided = plan(database_url=database_url, provider=provider)
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
        server = provide_server(database_url=database_url, provider=provider)
    except errors.JobforgeError as exc:
        report.checks.append(Check("server", False, str(exc)))
        return report
    try:
        report.figures["server_start_s"] = round(time.perf_counter() - began, 3)
        with db.connect(server.dsn) as conn:
            version = db.scalar(conn, "server_version")
        report.checks.append(Check("server", True, f"{server.describe()}, PostgreSQL {version}"))
        # Migrations of the database commands act on (read only), else of the named server.
        target = database_url or os.environ.get(URL_ENV)
        source = "--database-url" if database_url else URL_ENV if target else None
        _migrations(report, target or server.dsn, bool(target) or decided.choice == "url", source)
        _template(report, server.dsn)
    except errors.JobforgeError as exc:
        report.checks.append(Check("database", False, str(exc)))
    finally:
        server.stop()
    return report


def _migrations(report: Report, dsn: str, external: bool, source: str | None) -> None:
    """Migrations of the database commands act on: pending ones fail the check (what to run is
    in its detail). A scratch server's own database (`source` None) is only described."""
    files = migrate.discover()
    latest = files[-1].name if files else "(none)"
    if not external:
        report.checks.append(Check("migrations", True, f"{len(files)} shipped, latest {latest}"))
        return
    with db.connect(dsn) as conn:
        state = migrate.status(conn, files)
    pending = ", ".join(m.name for m in state.pending)
    detail = (
        f"{len(state.applied)} applied, up to date (latest {latest})"
        if state.up_to_date
        else f"{len(state.applied)} applied, {len(state.pending)} pending: {pending}; "
        + migrate.fix_command(source)
    )
    ok = state.up_to_date or source is None
    report.checks.append(Check("migrations of the URL's database", ok, detail))


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
