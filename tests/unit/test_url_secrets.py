"""No message about a connection string shows its password, however libpq splits it.

libpq splits a URL's userinfo at the first `@`: a raw `@`, `/` or space in a password lands in
the host or database it reports, and its parse errors quote the token they could not read. The
connections go to 127.0.0.1 port 1 (refused at once) or fail to parse: no server is needed.
"""

from __future__ import annotations

import pytest

from jobforge import db, errors

SECRET = "Sup3rS3cret"


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://postgres:{SECRET}/x@127.0.0.1:1/postgres",
        f"postgresql://postgres:pa@{SECRET}@127.0.0.1:1/postgres",
        f"postgresql://postgres:{SECRET}%zz@127.0.0.1:1/postgres",
        f"postgresql://postgres:{SECRET} x@127.0.0.1:1/postgres",
        f"postgresql://postgres:{SECRET}#x@127.0.0.1:1/postgres",
        f"postgresql://postgres:{SECRET}?x@127.0.0.1:1/postgres",
        f"postgresql://postgres:a+{SECRET}/=@127.0.0.1:1/postgres",
        f"postgres://u:{SECRET}%40@127.0.0.1:1/db",
        f"host=127.0.0.1 port=1 user=x password={SECRET}",
        f"host=127.0.0.1 port=1 user=x password='{SECRET} x'",
        f"postgresql://127.0.0.1:1/db?password={SECRET}",
        f"mysql://root:{SECRET}@h/db",
        f"postgresql://postgres:{SECRET}@127.0.0.1:notaport/db",
    ],
)
def test_no_connection_error_shows_the_password(dsn: str) -> None:
    with pytest.raises(errors.ConfigurationError) as raised:
        db.connect(dsn).close()
    message = str(raised.value)
    assert "Sup3r" not in message
    assert "S3cret" not in message
    assert "\n" not in message
    try:
        described = db.describe(dsn)
    except errors.ConfigurationError as exc:
        described = str(exc)
    assert "S3cret" not in described


def test_a_url_of_another_database_is_named_as_such() -> None:
    with pytest.raises(errors.ConfigurationError, match=r"a mysql:// URL, not a postgresql:// one"):
        db.describe("mysql://root:pw@h/db")


def test_an_unreadable_url_says_how_to_write_a_password() -> None:
    with pytest.raises(errors.ConfigurationError, match=r"percent-encode .* @ as %40"):
        db.describe("postgresql://u:bad%zz@h/db")


def test_short_passwords_do_not_garble_messages() -> None:
    """A password of 3 characters or fewer is hidden where the URL's shape shows it, not by
    replacing its letters everywhere in the message."""
    assert db.scrub("cannot connect to h:1/postgres", "postgresql://u:pos@h:1/postgres") == (
        "cannot connect to h:1/postgres"
    )
    assert "pos@" not in db.scrub("postgresql://u:pos@h:1/postgres", "postgresql://u:pos@h:1/x")
