"""How a pydantic `ValidationError` reads in a one-line error: each problem as `field.path: msg`,
the root named `(root)`, and a count of the ones left out. Every place that turns a rejected
input, case, bundle or job into a message uses this, so they all read alike."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


def summary(exc: ValidationError, *, limit: int | None = None) -> str:
    """`a.b: msg; c: msg (and 3 more)`: the first `limit` problems (all without one)."""
    shown = exc.errors()[:limit] if limit is not None else exc.errors()
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in shown]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def details(exc: ValidationError) -> list[dict[str, Any]]:
    """The problems as data (an error's `details`, stored with a failed run)."""
    return [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
