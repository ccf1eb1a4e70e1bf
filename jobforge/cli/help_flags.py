"""`--help` shows a flag as a flag (`--json`, not `--json <bool>`), a value by its name
(`--http-allow-host HOST`, not `<list[str]>`), and help text as written.

typer (0.29 at least) prints the type of every option in the help panel, a boolean flag's too
(`<bool>`, even for `--help`), as if the flag took a value. A flag's metavar set to "" is what
the panel prints instead (older typer printed a flag's metavar only when it was not BOOLEAN, so
"" prints nothing there either). An option that takes a value shows its Python type instead of
a name (`<str>`, `<list[str]>`); it gets the last word of its name (`HOST`, `URL`, `PORT`). Help
text is plain, not rich markup, so `[tool.jobforge]` in it is printed, not swallowed as a tag.
Every command and group of the app gets classes that do so.
"""

from __future__ import annotations

import enum
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


def _bare(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "metavar", "") is not None:
            continue  # declared by the command
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif getattr(param, "param_type_name", "") == "option" and not _is_choice(param):
            longest = max(getattr(param, "opts", None) or [param.name or "value"], key=len)
            param.metavar = longest.lstrip("-").split("-")[-1].upper()
    return params


def _is_choice(param: Any) -> bool:
    """An option whose values are an Enum's: its help already lists them (`<text|json>`)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


class FlagCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _bare(super().get_params(ctx))


class FlagGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _bare(super().get_params(ctx))


def show_flags_bare(app: typer.Typer) -> None:
    """Give every command of `app` and of its sub-apps (registered so far) the classes above,
    unless one declares a class of its own; help text is plain."""
    app.rich_markup_mode = None
    if app.info.cls in (None, TyperGroup) or not isinstance(app.info.cls, type):
        app.info.cls = FlagGroup
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = FlagCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            show_flags_bare(group.typer_instance)
