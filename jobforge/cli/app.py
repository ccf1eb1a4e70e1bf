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

import importlib
from difflib import get_close_matches
from functools import cache
from typing import Any

from jobforge import errors
from jobforge.cli.help_flags import FlagGroup, show_flags_bare

#: Every command, in the order `jobforge --help` lists them (single commands, then groups): its
#: module under jobforge.cli and the Typer app (a group) or the function (one command) in it. A
#: command's module is imported only when that command runs (or --help lists them all), so
#: `jobforge jobs list` loads neither the worker nor golden cases and replay, and starts in half
#: the time.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init_command", "init"),
    "migrate": ("migrate_command", "migrate"),
    "doctor": ("doctor", "doctor"),
    "enqueue": ("jobs_commands", "enqueue"),
    "health": ("stats_commands", "health"),
    "prune": ("retention_command", "prune_command"),
    "worker": ("worker_command", "worker"),
    "replay": ("replay_command", "replay"),
    "certify": ("certify_command", "certify_command"),
    "mcp": ("mcp_command", "mcp"),
    "dashboard": ("dashboard_command", "dashboard"),
    "db": ("db_commands", "app"),
    "jobs": ("jobs_commands", "app"),
    "audit": ("audit_command", "app"),
    "limits": ("limits_command", "app"),
    "runners": ("runners_command", "app"),
    "retention": ("retention_command", "app"),
    "schedules": ("schedules_command", "app"),
    "events": ("events_command", "app"),
    "triggers": ("triggers_command", "app"),
    "features": ("features_command", "app"),
    "connectors": ("connectors_command", "app"),
    "keys": ("keys_command", "app"),
    "tokens": ("tokens_command", "app"),
    "contracts": ("contracts_command", "app"),
    "runs": ("runs_commands", "app"),
}


@cache
def load_command(name: str) -> Any:
    """The click command `name` is, built from its module (imported now) as Typer builds it."""
    module_name, attribute = COMMANDS[name]
    found = getattr(importlib.import_module(f"jobforge.cli.{module_name}"), attribute)
    if isinstance(found, typer.Typer):
        show_flags_bare(found)
        return typer.main.get_group(found)
    single = typer.Typer(add_completion=False)
    single.command(name)(found)
    show_flags_bare(single)
    return typer.main.get_command(single)


class LazyGroup(FlagGroup):
    """The top-level group: its commands are named in COMMANDS and loaded when asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS:
            return load_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """An unknown command's error suggests the close ones, as typer's does from the
        commands it holds (this group holds none until asked)."""
        try:
            return super().resolve_command(ctx, args)
        except ClickException as exc:
            if args and "Did you mean" not in exc.message:
                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    suggested = ", ".join(repr(m) for m in matches)
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {suggested}?"
            raise


app = typer.Typer(
    name="jobforge",
    help="A Postgres-native job queue, and contract and determinism testing for its runners.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
)


def _say_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        print(f"jobforge {version('jobforge')}")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_say_version, help="Print the version; exit."
    ),
) -> None:
    """A group, not one command (its help is the app's)."""


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
