"""The dashboard's sessions under a flood: every cookie-less request makes one, and a flood of
them must not sign out the people who signed in (the oldest anonymous session goes first)."""

from __future__ import annotations

from jobforge.dashboard.auth import Identity, Sessions


def test_a_flood_of_anonymous_sessions_keeps_the_signed_in_ones() -> None:
    sessions = Sessions(limit=50)
    sid, _ = sessions.new(Identity(tenant="acme", actor="alice"))
    for _ in range(10_000):
        sessions.new(None)
    kept = sessions.get(sid)
    assert kept is not None
    assert kept.identity == Identity(tenant="acme", actor="alice")


def test_signed_in_sessions_go_oldest_first_when_no_anonymous_one_is_left() -> None:
    sessions = Sessions(limit=2)
    first, _ = sessions.new(Identity(tenant="acme", actor="a"))
    second, _ = sessions.new(Identity(tenant="acme", actor="b"))
    third, _ = sessions.new(Identity(tenant="acme", actor="c"))
    assert sessions.get(first) is None
    assert sessions.get(second) is not None
    assert sessions.get(third) is not None
