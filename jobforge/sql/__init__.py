"""Named SQL queries, read once from `queries/*.sql`.

Each query is headed by a line `-- name: <query_name>`; the text up to the next header is the
statement. Query names are unique across files. Statements that need identifiers use psycopg's
`{placeholder}` composition (done by the caller with `psycopg.sql.Identifier`), never f-strings.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import LiteralString, cast

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str, *, source: str = "<string>") -> dict[str, LiteralString]:
    """Split one file's text into its named queries."""
    queries: dict[str, LiteralString] = {}
    headers = list(_HEADER.finditer(text))
    preamble = text[: headers[0].start()] if headers else text
    if any(line.strip() and not line.lstrip().startswith("--") for line in preamble.splitlines()):
        raise ValueError(f"{source}: SQL before the first '-- name:' header")
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        body = text[header.end() : end].strip()
        name = header.group(1)
        if not body:
            raise ValueError(f"{source}: query {name!r} is empty")
        if name in queries:
            raise ValueError(f"{source}: query {name!r} defined twice")
        # jobforge takes responsibility for these statements: they come from our own files.
        queries[name] = cast("LiteralString", body)  # type: ignore[redundant-cast]  # mypy: = str
    return queries


@cache
def queries() -> dict[str, LiteralString]:
    """All named queries of the package, keyed by name."""
    found: dict[str, LiteralString] = {}
    folder = resources.files(__package__) / "queries"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, body in parse(entry.read_text("utf-8"), source=entry.name).items():
            if name in found:
                raise ValueError(f"{entry.name}: query {name!r} already defined in another file")
            found[name] = body
    return found


def query(name: str) -> LiteralString:
    """The statement named `name`; a KeyError names the missing query."""
    try:
        return queries()[name]
    except KeyError:
        raise KeyError(f"no SQL query named {name!r} in jobforge/sql/queries") from None
