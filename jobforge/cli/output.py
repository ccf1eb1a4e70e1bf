"""Shared console objects and the `--format` choice for reports."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)


class Format(StrEnum):
    text = "text"
    json = "json"


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str), indent=2)
