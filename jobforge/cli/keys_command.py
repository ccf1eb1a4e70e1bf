"""`jobforge keys generate|add|list|revoke|rotate`: the tenants' ed25519 signing keys.

Glue over `jobforge.trust.keys` (files) and `jobforge.queue.signing` (the registry). Adding,
rotating and revoking are an operator's (a superuser or a member of jobforge_worker), for the
tenant named: a login that may not gets one line saying so. A tenant's login may list its keys.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from jobforge import db, errors, trust
from jobforge.cli.durations import parse_duration
from jobforge.cli.options import DEFAULT_HELP
from jobforge.cli.output import console, literal, print_json
from jobforge.provision.target import chosen_tenant, ready_database_url
from jobforge.queue import QueueClient, signing
from jobforge.queue.signing import SigningKey
from jobforge.trust.keys import b64url, write_public_key

app = typer.Typer(help="The tenants' ed25519 keys that sign jobs (docs/trust.md).",
                  no_args_is_help=True)  # fmt: skip

_URL = typer.Option(None, "--database-url", help=f"Target database ({DEFAULT_HELP}).")
_TENANT = typer.Option(None, "--tenant", help="Tenant (default: $JOBFORGE_TENANT).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of lines.")
_KEY_ID = typer.Option(None, "--key-id", help="The key's id (default: ed25519:<16 hex of its "
                       "SHA-256>); never reused for another key.")  # fmt: skip
_DENIED = "only a superuser or a member of jobforge_worker may change a tenant's signing keys"


def _tenant(tenant: str | None) -> str:
    chosen = chosen_tenant(tenant, required=True)
    assert chosen is not None
    return chosen


def _client(url: str | None, tenant: str | None) -> QueueClient:
    return QueueClient.connect(ready_database_url(url), tenant=_tenant(tenant), max_size=1)


@app.command("generate")
def generate(
    path: Path = typer.Argument(
        ...,
        help="Private key file to write (mode 0600); the public key goes beside it, as PATH.pub.",
    ),
    as_json: bool = _JSON,
) -> None:
    """Make a new ed25519 key pair: the private key file (PKCS#8 PEM, 0600, never
    overwritten) and PATH.pub (public PEM). Prints the default key id and the public key."""
    public_path = path.with_name(path.name + ".pub")
    if public_path.exists():
        raise errors.ConfigurationError(f"{public_path} exists: a key file is never overwritten")
    key = trust.generate_private_key()
    trust.write_private_key(key, path)
    write_public_key(key, public_path)
    public = trust.public_key_bytes(key)
    shown = {"private_key_file": str(path), "public_key_file": str(public_path),
             "key_id": trust.key_id_of(public), "public_key": b64url(public)}  # fmt: skip
    if as_json:
        print_json(shown)
        return
    console.print(f"wrote {path} (private, 0600) and {public_path}", markup=False)
    console.print(f"key id {shown['key_id']}  public key {shown['public_key']}", markup=False)


@app.command("add")
def add(
    public_key: str = typer.Argument(
        ...,
        metavar="PUBLIC_KEY",
        help="A PEM file (public or private) or the base64url raw public key.",
    ),
    owner: str = typer.Option(..., "--owner", help="Whom the key belongs to."),
    key_id: str | None = _KEY_ID,
    valid_from: datetime | None = typer.Option(None, "--valid-from", help="Default: now."),
    valid_until: datetime | None = typer.Option(None, "--valid-until", help="Default: no end."),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
) -> None:
    """Register a public key for the tenant (an operator's command)."""
    raw = trust.load_public_key(public_key)
    chosen_id = key_id or trust.key_id_of(raw)
    chosen = _tenant(tenant)
    with db.connect(ready_database_url(url)) as conn, db.readable_or(_DENIED):
        state = signing.add_key(conn, chosen, chosen_id, raw, owner, valid_from=valid_from,
                                valid_until=valid_until)  # fmt: skip
    console.print(f"key {chosen_id} {state}", markup=False)


@app.command("list")
def list_command(url: str | None = _URL, tenant: str | None = _TENANT,
                 as_json: bool = _JSON) -> None:  # fmt: skip
    """The tenant's keys: id, owner, validity, revocation."""
    with _client(url, tenant) as client:
        keys = client.signing_keys()
    if as_json:
        print_json([_shown(k) for k in keys])
        return
    if not keys:
        console.print("no signing keys", markup=False)
        return
    table = Table("key id", "owner", "valid from", "valid until", "revoked", "public key")
    for key in keys:
        table.add_row(literal(key.key_id), literal(key.owner), key.valid_from.isoformat(),
                      key.valid_until.isoformat() if key.valid_until else "-",
                      key.revoked_at.isoformat() if key.revoked_at else "-",
                      b64url(key.public_key))  # fmt: skip
    console.print(table)


def _shown(key: SigningKey) -> dict[str, object]:
    data = key.model_dump(mode="json", exclude={"public_key"})
    data["public_key"] = b64url(key.public_key)
    return data


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., metavar="KEY_ID"),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept with the key)."),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
) -> None:
    """Revoke a key for good: jobs it signed are refused from now on, even queued ones."""
    chosen = _tenant(tenant)
    with db.connect(ready_database_url(url)) as conn, db.readable_or(_DENIED):
        changed = signing.revoke_key(conn, chosen, key_id, reason=reason)
    console.print(f"key {key_id} {'revoked' if changed else 'was already revoked'}",
                  markup=False)  # fmt: skip


@app.command("rotate")
def rotate(
    old: str = typer.Argument(..., metavar="OLD_KEY_ID"),
    public_key: str = typer.Argument(
        ..., metavar="NEW_PUBLIC_KEY", help="A PEM file or the base64url raw public key."
    ),
    key_id: str | None = _KEY_ID,
    owner: str | None = typer.Option(None, "--owner", help="Default: the old key's owner."),
    overlap: str = typer.Option("1d", "--overlap", help="How long both keys stay valid."),
    url: str | None = _URL,
    tenant: str | None = _TENANT,
) -> None:
    """Register the new key and end the old one's validity after the overlap (revoke it
    then, or earlier, with `jobforge keys revoke`)."""
    seconds = parse_duration(overlap, "--overlap")
    raw = trust.load_public_key(public_key)
    chosen_id = key_id or trust.key_id_of(raw)
    chosen = _tenant(tenant)
    with db.connect(ready_database_url(url)) as conn, db.readable_or(_DENIED):
        until = signing.rotate_key(conn, chosen, old, chosen_id, raw, owner=owner,
                                   overlap_s=seconds)  # fmt: skip
    console.print(f"key {chosen_id} added; {old} valid until {until.isoformat()}", markup=False)
