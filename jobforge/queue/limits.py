"""Queue limits: caps on running jobs per type or tenant, and token-bucket rates per type.

The limits live in the database (`jobforge.queue_limits`, migrations/0010) because the claim
enforces them inside its own transaction: a limit kept by each worker could not hold across
several workers. Only an operator's login may set, clear or read them (a superuser or a member of
jobforge_worker): a tenant that could lift its own cap would make it pointless. The checks here
repeat the database's so a bad value is told before any connection is tried; the database's
own checks stay the authority.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from jobforge import db, errors

Scope = Literal["type", "tenant"]

#: What a limit applies to.
SCOPES: tuple[str, ...] = get_args(Scope)

#: The largest cap, rate and burst the database accepts.
MAX_VALUE = 1_000_000
#: The smallest rate (jobs a second; one job in 11.6 days): below it a bucket's arithmetic
#: stops meaning anything (the database refused nothing above 0, down to 5e-324, before 0011).
MIN_RATE = 0.000001


@dataclass(frozen=True, slots=True)
class Limit:
    """One type's or tenant's limits; `tokens` is the bucket as of the last claim that read it."""

    scope: Scope
    key: str
    max_running: int | None
    rate_per_s: float | None
    burst: float | None
    tokens: float | None


def check_limit(
    scope: str, max_running: int | None, rate_per_s: float | None, burst: float | None
) -> Scope:
    """The scope, once the values make a limit the database would accept; else one line why."""
    if scope not in SCOPES:
        raise errors.ConfigurationError(
            f"unknown limit scope {scope!r}: choose one of {', '.join(SCOPES)}"
        )
    if max_running is None and rate_per_s is None:
        raise errors.ConfigurationError("a limit needs --max-running or --rate (or both)")
    if max_running is not None and not 1 <= max_running <= MAX_VALUE:
        raise errors.ConfigurationError(
            f"--max-running {max_running} is out of range: give 1-{MAX_VALUE}"
        )
    if rate_per_s is not None:
        if scope != "type":
            raise errors.ConfigurationError("--rate is per job type: a tenant takes --max-running")
        if not (math.isfinite(rate_per_s) and MIN_RATE <= rate_per_s <= MAX_VALUE):
            raise errors.ConfigurationError(
                f"--rate {rate_per_s:g} is out of range: give {MIN_RATE:.6f}-{MAX_VALUE}"
            )
    if burst is not None:
        if rate_per_s is None:
            raise errors.ConfigurationError("--burst needs --rate")
        if not (math.isfinite(burst) and 1 <= burst <= MAX_VALUE):
            raise errors.ConfigurationError(
                f"--burst {burst:g} is out of range: give 1-{MAX_VALUE}"
            )
    return scope  # type: ignore[return-value]  # checked against SCOPES above


def _limit(row: tuple[object, ...]) -> Limit:
    scope, key, max_running, rate, burst, tokens = row
    return Limit(
        scope=str(scope),  # type: ignore[arg-type]  # the table's CHECK: type or tenant
        key=str(key),
        max_running=None if max_running is None else int(str(max_running)),
        rate_per_s=None if rate is None else float(str(rate)),
        burst=None if burst is None else float(str(burst)),
        tokens=None if tokens is None else float(str(tokens)),
    )


def set_limit(
    conn: db.Connection,
    scope: str,
    key: str,
    *,
    max_running: int | None = None,
    rate_per_s: float | None = None,
    burst: float | None = None,
) -> Limit:
    """Set (replace) the limits of one job type or tenant; a new bucket starts full, and a
    burst left out is the rate (at least 1)."""
    checked = check_limit(scope, max_running, rate_per_s, burst)
    params = {"scope": checked, "key": key, "max_running": max_running,
              "rate_per_s": rate_per_s, "burst": burst}  # fmt: skip
    with db.tenant_transaction(conn, None, worker=True):
        row = db.execute(conn, "limit_set", params).fetchone()
    return _limit(row)


def clear_limit(conn: db.Connection, scope: str, key: str) -> bool:
    """Remove the limits of one job type or tenant; False when it had none."""
    if scope not in SCOPES:
        raise errors.ConfigurationError(
            f"unknown limit scope {scope!r}: choose one of {', '.join(SCOPES)}"
        )
    with db.tenant_transaction(conn, None, worker=True):
        return bool(db.scalar(conn, "limit_clear", {"scope": scope, "key": key}))


def list_limits(conn: db.Connection) -> list[Limit]:
    """Every limit, by scope and key."""
    with db.tenant_transaction(conn, None, worker=True):
        return [_limit(row) for row in db.execute(conn, "limit_list").fetchall()]
