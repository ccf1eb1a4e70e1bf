"""Feature flags (migrations/0018): schedules, events and triggers are off until an operator
turns them on, for the whole deployment or for one tenant.

A tenant's own setting wins over the deployment's; no setting at all is off. Only an operator
(a superuser or a member of jobforge_worker) reads or changes the flags: a tenant's app login
has no grant on them, so a tenant cannot turn on what the operator left off. The functions of a
flagged feature refuse in one line naming the flag (`errors.FeatureDisabled`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from jobforge import db, errors

#: The features behind a flag; the database's `jobforge.known_features()` is the authority.
FEATURES: tuple[str, ...] = ("events", "schedules", "triggers")
#: The tenant key of the deployment's setting, for every tenant without its own.
DEPLOYMENT = "*"


@dataclass(frozen=True, slots=True)
class Flag:
    """One setting: `tenant` None is the deployment's."""

    feature: str
    tenant: str | None
    enabled: bool
    updated_at: datetime
    login: str
    actor: str | None


def check_feature(feature: str) -> None:
    """One line naming the known features unless `feature` is one."""
    if feature not in FEATURES:
        raise errors.ConfigurationError(
            f"unknown feature {feature[:60]!r}: known features are {', '.join(FEATURES)}"
        )


def _flag(row: Sequence[object]) -> Flag:
    feature, tenant, enabled, updated_at, login, actor = row
    assert isinstance(updated_at, datetime)
    return Flag(str(feature), None if tenant == DEPLOYMENT else str(tenant), bool(enabled),
                updated_at, str(login), None if actor is None else str(actor))  # fmt: skip


def set_feature(
    conn: db.Connection,
    feature: str,
    tenant: str | None,
    enabled: bool,
    acting: db.Acting = db.NOBODY,
) -> Flag:
    """Turn `feature` on or off for `tenant` (None: the deployment)."""
    check_feature(feature)
    params = {"feature": feature, "tenant": tenant or DEPLOYMENT, "enabled": enabled}
    with db.tenant_transaction(conn, None, worker=True, acting=acting):
        return _flag(db.execute(conn, "feature_set", params).fetchone())


def clear_feature(conn: db.Connection, feature: str, tenant: str) -> bool:
    """`tenant` follows the deployment's setting again; False when it had none of its own."""
    check_feature(feature)
    with db.tenant_transaction(conn, None, worker=True):
        return bool(db.scalar(conn, "feature_clear", {"feature": feature, "tenant": tenant}))


def list_features(conn: db.Connection) -> list[Flag]:
    """Every setting: per feature, the deployment's first, then the tenants' by name."""
    with db.tenant_transaction(conn, None, worker=True):
        return [_flag(row) for row in db.execute(conn, "feature_list").fetchall()]


def enabled_for(flags: Sequence[Flag], feature: str, tenant: str | None) -> bool:
    """Whether `feature` is on for `tenant` (None: for a tenant without its own setting)."""
    own = [f for f in flags if f.feature == feature and f.tenant == tenant and tenant is not None]
    base = [f for f in flags if f.feature == feature and f.tenant is None]
    return (own or base)[0].enabled if (own or base) else False
