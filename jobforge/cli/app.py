"""Entry point: builds the Typer app and turns jobforge errors into a message and an exit code.

Exit codes (DESIGN §3): 0 ok, 1 a check failed, 2 usage or configuration error.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

try:  # typer 0.29 vendors click (typer._click); older ones raise click's own exceptions
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException  # type: ignore[assignment]

from jobforge import errors
from jobforge.cli import (
    audit_command,
    certify_command,
    connectors_command,
    contracts_command,
    dashboard_command,
    db_commands,
    doctor,
    events_command,
    features_command,
    init_command,
    jobs_commands,
    keys_command,
    limits_command,
    mcp_command,
    migrate_command,
    replay_command,
    retention_command,
    runners_command,
    runs_commands,
    schedules_command,
    stats_commands,
    tokens_command,
    triggers_command,
    worker_command,
)
from jobforge.cli.help_flags import show_flags_bare

app = typer.Typer(
    name="jobforge",
    help="A Postgres-native job queue, and contract and determinism testing for its runners.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("init")(init_command.init)
app.add_typer(db_commands.app, name="db")
app.command("migrate")(migrate_command.migrate)
app.command("doctor")(doctor.doctor)
app.command("enqueue")(jobs_commands.enqueue)
app.add_typer(jobs_commands.app, name="jobs")
app.add_typer(audit_command.app, name="audit")
jobs_commands.app.command("stats")(stats_commands.stats)
app.command("health")(stats_commands.health)
app.add_typer(limits_command.app, name="limits")
app.add_typer(runners_command.app, name="runners")
app.command("prune")(retention_command.prune_command)
app.add_typer(retention_command.app, name="retention")
app.add_typer(schedules_command.app, name="schedules")
app.add_typer(events_command.app, name="events")
app.add_typer(triggers_command.app, name="triggers")
app.add_typer(features_command.app, name="features")
app.add_typer(connectors_command.app, name="connectors")
app.add_typer(keys_command.app, name="keys")
app.add_typer(tokens_command.app, name="tokens")
app.command("worker")(worker_command.worker)
app.add_typer(contracts_command.app, name="contracts")
app.add_typer(runs_commands.app, name="runs")
app.command("replay")(replay_command.replay)
app.command("certify")(certify_command.certify_command)
app.command("mcp")(mcp_command.mcp)
app.command("dashboard")(dashboard_command.dashboard)
show_flags_bare(app)  # last: `--json` in --help, not `--json <bool>`

_stderr = Console(stderr=True, highlight=False, emoji=False)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a `JobforgeError` or a usage error click finds (a value out of range, an
    unknown option) becomes one line on stderr, never a traceback or a boxed panel."""
    try:
        code = app(args=argv, prog_name="jobforge", standalone_mode=False)
    except errors.JobforgeError as exc:
        _stderr.print(
            f"[bold red]error:[/] {escape(str(exc).strip())}", markup=True, soft_wrap=True
        )
        return exc.exit_code
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `jobforge jobs`: the help, as click has it
            exc.show()
            return exc.exit_code
        _stderr.print(f"[bold red]error:[/] {escape(usage_line(exc))}", markup=True, soft_wrap=True)
        return exc.exit_code
    except typer.Abort:  # end of input at a prompt
        _stderr.print("aborted", markup=False)
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code if isinstance(code, int) else 0  # typer.Exit(n) comes back as n


def usage_line(exc: ClickException) -> str:
    """Click's message in one line, with the command whose --help tells more:
    `Invalid value for '--runs': … (see jobforge certify --help)`."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        message += f" (see {ctx.command_path} {ctx.help_option_names[0]})"
    return message


if __name__ == "__main__":
    sys.exit(main())
