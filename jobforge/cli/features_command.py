"""`jobforge features list|enable|disable|clear`: the feature flags (migrations/0018).

Schedules, events and triggers are off until an operator turns them on, for every tenant
(`--all-tenants`: the deployment's setting) or for one (`--tenant`: its own setting, which wins
over the deployment's). Only a superuser or a member of jobforge_worker may read or change the
flags; a tenant's app login gets one line saying so.
"""

from __future__ import annotations

import typer
from rich.table import Table

from jobforge import db, errors
from jobforge.cli.options import ACTOR, DEFAULT_HELP, cli_actor
from jobforge.cli.output import console, literal, print_json
from jobforge.provision.target import ready_database_url
from jobforge.queue import audit
from jobforge.queue.features import (
    FEATURES,
    Flag,
    check_feature,
    clear_feature,
    enabled_for,
    list_features,
    set_feature,
)

app = typer.Typer(
    help=f"Feature flags ({', '.join(FEATURES)}): off until enabled, per deployment or tenant.",
    no_args_is_help=True,
)

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")
_FEATURE = typer.Argument(..., metavar="FEATURE", help=f"One of {', '.join(FEATURES)}.")
_TENANT = typer.Option(None, "--tenant", help="This tenant only (its own setting).")
_ALL = typer.Option(
    False, "--all-tenants", help="The deployment's setting, for every tenant without its own."
)
_DENIED = "only a superuser or a member of jobforge_worker may manage feature flags"


def _target(feature: str, tenant: str | None, all_tenants: bool, verb: str) -> str | None:
    check_feature(feature)
    if (tenant is None) == (not all_tenants):
        raise errors.ConfigurationError(
            f"give --tenant TENANT or --all-tenants, one of them: features {verb} {feature} "
            "--tenant acme"
        )
    return tenant


def _as_dict(flag: Flag) -> dict[str, object]:
    return {"feature": flag.feature, "tenant": flag.tenant or "*", "enabled": flag.enabled,
            "updated_at": flag.updated_at.isoformat(), "login": flag.login,
            "actor": flag.actor}  # fmt: skip


def _switch(feature: str, tenant: str | None, all_tenants: bool, enabled: bool,
            url: str | None, actor: str | None, as_json: bool) -> None:  # fmt: skip
    verb = "enable" if enabled else "disable"
    target = _target(feature, tenant, all_tenants, verb)
    acting = audit.acting(cli_actor(actor), None)
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        flag = set_feature(conn, feature, target, enabled, acting)
        flags = list_features(conn)
    others = [f for f in flags if f.feature == feature and f.tenant is not None
              and f.enabled != enabled]  # fmt: skip
    if as_json:
        print_json(_as_dict(flag))
        return
    who = "every tenant without its own setting" if target is None else f"tenant {target}"
    console.print(f"feature {feature} {verb}d for {who}", markup=False)
    if target is None and others:
        names = ", ".join(f.tenant or "" for f in others[:10])
        state = "enabled" if not enabled else "disabled"
        console.print(
            literal(f"note: {len(others)} tenant(s) keep their own setting ({state}): {names} "
                    f"(jobforge features clear {feature} --tenant TENANT)"),
        )  # fmt: skip


@app.command("enable")
def enable_command(feature: str = _FEATURE, tenant: str | None = _TENANT,
                   all_tenants: bool = _ALL, url: str | None = _URL,
                   actor: str | None = ACTOR, as_json: bool = _JSON) -> None:  # fmt: skip
    """Turn a feature on for one tenant, or for every tenant (--all-tenants)."""
    _switch(feature, tenant, all_tenants, True, url, actor, as_json)


@app.command("disable")
def disable_command(feature: str = _FEATURE, tenant: str | None = _TENANT,
                    all_tenants: bool = _ALL, url: str | None = _URL,
                    actor: str | None = ACTOR, as_json: bool = _JSON) -> None:  # fmt: skip
    """Turn a feature off for one tenant (even if on for all), or for every tenant."""
    _switch(feature, tenant, all_tenants, False, url, actor, as_json)


@app.command("clear")
def clear_command(
    feature: str = _FEATURE,
    tenant: str = typer.Option(..., "--tenant", help="The tenant whose own setting goes."),
    url: str | None = _URL,
) -> None:
    """Remove a tenant's own setting: it follows the deployment's again."""
    check_feature(feature)
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        cleared = clear_feature(conn, feature, tenant)
    said = (
        f"tenant {tenant} follows the deployment's setting of {feature} again"
        if cleared
        else f"tenant {tenant} had no setting of its own for {feature}"
    )
    console.print(literal(said))


@app.command("list")
def list_command(url: str | None = _URL, as_json: bool = _JSON) -> None:
    """Each feature's deployment setting and the tenants with their own."""
    dsn = ready_database_url(url)
    with db.connect(dsn) as conn, db.readable_or(_DENIED):
        flags = list_features(conn)
    if as_json:
        print_json({"features": [
            {"feature": name, "default": enabled_for(flags, name, None),
             "settings": [_as_dict(f) for f in flags if f.feature == name]}
            for name in FEATURES
        ]})  # fmt: skip
        return
    table = Table("feature", "tenant", "enabled", "updated", "by", box=None)
    for name in FEATURES:
        own = [f for f in flags if f.feature == name]
        if not any(f.tenant is None for f in own):
            table.add_row(name, "* (all)", "no (never set)", "-", "-")
        for f in own:
            table.add_row(*map(literal, (
                name, "* (all)" if f.tenant is None else f.tenant, "yes" if f.enabled else "no",
                f"{f.updated_at:%Y-%m-%d %H:%M:%S %Z}", f.actor or f.login,
            )))  # fmt: skip
    console.print(table)
