"""Entry point: builds the Typer app and turns jobforge errors into a message and an exit code.

Exit codes (DESIGN §3): 0 ok, 1 a check failed, 2 usage or configuration error.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from jobforge import errors
from jobforge.cli import (
    certify_command,
    contracts_command,
    db_commands,
    doctor,
    init_command,
    jobs_commands,
    migrate_command,
    replay_command,
    runs_commands,
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
app.command("worker")(worker_command.worker)
app.add_typer(contracts_command.app, name="contracts")
app.add_typer(runs_commands.app, name="runs")
app.command("replay")(replay_command.replay)
app.command("certify")(certify_command.certify_command)
show_flags_bare(app)  # last: `--json` in --help, not `--json <bool>`

_stderr = Console(stderr=True, highlight=False, emoji=False)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a `JobforgeError` becomes one line on stderr, never a traceback."""
    try:
        app(args=argv, standalone_mode=True)  # click prints usage errors itself (exit 2)
    except errors.JobforgeError as exc:
        _stderr.print(
            f"[bold red]error:[/] {escape(str(exc).strip())}", markup=True, soft_wrap=True
        )
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
