"""What PostgreSQL cannot store in text or jsonb, said in words: a NUL character and a lone
surrogate (half of a UTF-16 pair, which Python strings may hold and UTF-8 cannot).

The worker records outcomes in batches: one value the database refuses fails the whole
statement, the other jobs' outcomes with it. So whatever a handler hands back (a result, a
follow-up's key or input, an exception's message) is looked at here first."""

from __future__ import annotations

import re

#: A NUL escaped in JSON text: `\u0000` after an even number of backslashes (after an odd
#: number it is the six characters "\u0000", which jsonb stores).
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")

NUL = "it holds a NUL character (\\u0000), which PostgreSQL cannot store"
SURROGATE = "it holds a lone surrogate (half of a UTF-16 pair), which is not Unicode text"


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store this string in text or jsonb, or None."""
    if "\x00" in value:
        return NUL
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE
    return None


def json_problem(text: str) -> str | None:
    """Why jsonb cannot hold this JSON text (`json.dumps(..., ensure_ascii=False)`), or None."""
    if _JSON_NUL.search(text):
        return NUL
    return text_problem(text)


def shown(value: str) -> str:
    """The string with a NUL and a lone surrogate written as escapes: what an error record keeps
    of an exception's message."""
    if text_problem(value) is None:
        return value
    return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
