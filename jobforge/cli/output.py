"""Shared console objects and the `--format` choice for reports."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from typing import Any

from rich.console import Console

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


console = Console(highlight=False, soft_wrap=True, width=_width())


class Format(StrEnum):
    text = "text"
    json = "json"


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str), indent=2)
