"""Reading a JSON file a user (or an attacker) handed us: every way it can be bad is one line
that names the file, never a traceback — unreadable, not UTF-8, not JSON, or nested deeper than
the parser's recursion allows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobforge import errors


def read_json(path: Path, what: str) -> Any:
    """The JSON value in `path`; `what` names it in errors ("golden case", "bundle")."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.ConfigurationError(
            f"{what} {path} is not UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.ConfigurationError(f"{what} {path} is not JSON: {exc}") from None
    except RecursionError:
        raise errors.ConfigurationError(
            f"{what} {path} is nested too deeply to read (more than about 1000 levels)"
        ) from None
