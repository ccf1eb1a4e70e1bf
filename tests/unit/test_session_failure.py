"""A session that could not get a server says so again to every later caller, without trying
again: an unreachable host would otherwise cost each test its connect timeout (and say the same
thing each time)."""

from __future__ import annotations

import pytest

from jobforge import errors
from jobforge.provision import shared
from jobforge.provision.session import ProvisionSession, Settings


def test_a_provisioning_failure_is_tried_once_and_said_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str | None] = []

    def unreachable(*, database_url: str | None, **_: object) -> object:
        calls.append(database_url)
        raise errors.DatabaseUnreachable("cannot connect to Postgres at 127.0.0.1:1/x")

    monkeypatch.setattr(shared, "provide_server", unreachable)
    session = ProvisionSession(Settings("postgresql://u@127.0.0.1:1/x", "url", None, None))
    depths = []
    for _ in range(3):
        with pytest.raises(errors.DatabaseUnreachable, match=r"127\.0\.0\.1:1/x") as caught:
            session.server()
        depths.append(len(_frames(caught.value.__traceback__)))
    assert calls == ["postgresql://u@127.0.0.1:1/x"]
    assert depths[1] == depths[2]  # raised afresh: its traceback does not grow with each call
    session.close()


def _frames(tb: object) -> list[object]:
    found = []
    while tb is not None:
        found.append(tb)
        tb = getattr(tb, "tb_next", None)
    return found
