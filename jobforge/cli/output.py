"""Shared console objects and the `--format` choice for reports."""

from __future__ import annotations

import json
import os
import re
import sys
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.text import Text

#: The width of output that is not read on a terminal (a CI log, a pipe, a file): wide enough
#: that no table cell is ever folded or cut short (`billing.late_f…` hides a typo).
UNBOUNDED_WIDTH = 1_000_000


def _width() -> int | None:
    """None (the terminal's own width) on a terminal; otherwise `UNBOUNDED_WIDTH`, whatever
    COLUMNS says: rich would take 80 columns, or the width of a terminal on stdin or stderr."""
    try:
        os.get_terminal_size(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        return UNBOUNDED_WIDTH
    return None


#: No emoji codes either: `:warning:` in a tenant's payload is printed as written.
console = Console(highlight=False, soft_wrap=True, width=_width(), emoji=False)
#: Notes beside a command's output (stdout stays what a script reads).
notes = Console(stderr=True, highlight=False, soft_wrap=True)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def literal(value: object) -> Text:
    """`value` exactly as written, for a table cell or a line of data from a database, a file or
    an exception: never read as rich markup (`[/]`, `[conceal]`) or emoji codes, and control
    characters (a terminal's escape sequences, line breaks) shown as `\\x1b`, not obeyed."""
    return Text(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value)))


class Format(StrEnum):
    text = "text"
    json = "json"


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str), indent=2)


#: The largest job or run id (a Postgres bigint): an id option allows 1 to this, so a longer
#: number is a usage error rather than a database's "bigint out of range".
MAX_ID = 2**63 - 1


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 bundle`, `2 bundles` (`plural` when adding an s will not do)."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
