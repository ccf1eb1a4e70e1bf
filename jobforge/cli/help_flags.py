"""`--help` shows a flag as a flag: `--json`, not `--json <bool>`.

typer (0.29 at least) prints the type of every option in the help panel, a boolean flag's too
(`<bool>`, even for `--help`), as if the flag took a value. A flag's metavar set to "" is what
the panel prints instead (older typer printed a flag's metavar only when it was not BOOLEAN, so
"" prints nothing there either). Every command and group of the app gets classes that do so.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


def _bare(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and getattr(param, "metavar", "") is None:
            param.metavar = ""
    return params


class FlagCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _bare(super().get_params(ctx))


class FlagGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _bare(super().get_params(ctx))


def show_flags_bare(app: typer.Typer) -> None:
    """Give every command of `app` and of its sub-apps (registered so far) the classes above,
    unless one declares a class of its own."""
    if app.info.cls in (None, TyperGroup) or not isinstance(app.info.cls, type):
        app.info.cls = FlagGroup
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = FlagCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            show_flags_bare(group.typer_instance)
