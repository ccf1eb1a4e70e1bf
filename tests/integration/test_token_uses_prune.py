"""Token and signed-envelope uses are forgotten once they can no longer be presented
(migrations/0027): a day and an hour past their expiry (the hour of clock skew a worker may
allow, a day for clocks that disagree), oldest first, in batches, by a worker's call only; the
rest stay, an envelope's that names no expiry for good, so what could still be accepted is
still refused the second time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from jobforge import errors
from jobforge.provision import Database
from jobforge.queue import QueueClient
from tests.integration.conftest import new_app_login

T0 = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def uses(jobforge_db: Database) -> dict[str, datetime]:
    """Uses by jti, with their expiry, as the owner writes them (token_consume_v1's rows)."""
    expiries = {
        "expired-3d": (T0 - timedelta(days=4), T0 - timedelta(days=3)),
        "expired-2d": (T0 - timedelta(days=3), T0 - timedelta(days=2)),
        # within a day and an hour: a worker with an hour's skew and a slow clock still checks it
        "expired-1d": (T0 - timedelta(days=2), T0 - timedelta(hours=24, minutes=30)),
        "live": (T0 - timedelta(days=1), T0 + timedelta(hours=1)),
        # an envelope that names no expiry, used eleven years ago: presentable for ever
        "sig:unexpiring": (T0 - timedelta(days=4015), T0 - timedelta(days=365)),
    }
    with jobforge_db.connect() as owner:
        for n, (jti, (used, expires)) in enumerate(expiries.items()):
            for tenant in ("acme", "globex"):
                owner.execute(
                    "INSERT INTO jobforge.token_uses (tenant_id, jti, job_id, used_at, expires_at) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (tenant, jti, n + 1, used, expires),
                )
        owner.commit()
    return {jti: expires for jti, (_, expires) in expiries.items()}


def remaining(jobforge_db: Database) -> list[tuple[str, str]]:
    with jobforge_db.connect() as owner:
        rows = owner.execute(
            "SELECT tenant_id, jti FROM jobforge.token_uses ORDER BY expires_at, tenant_id"
        ).fetchall()
    return [(t, j) for t, j in rows]


def test_uses_past_expiry_and_skew_go_oldest_first_in_batches(
    jobforge_db: Database, uses: dict[str, datetime]
) -> None:
    with QueueClient.connect(jobforge_db.dsn) as worker:
        assert worker.prune_token_uses(batch=3, now=T0) == 3
        assert ("globex", "expired-3d") not in remaining(jobforge_db)
        assert ("acme", "expired-2d") in remaining(jobforge_db) or (
            "globex", "expired-2d") in remaining(jobforge_db)  # fmt: skip
        assert worker.prune_token_uses(batch=3, now=T0) == 1
        assert worker.prune_token_uses(batch=3, now=T0) == 0
    kept = {jti for _, jti in remaining(jobforge_db)}
    assert kept == {"expired-1d", "live", "sig:unexpiring"}
    assert len(remaining(jobforge_db)) == 6  # both tenants' rows


def test_an_app_login_cannot_prune_uses(jobforge_db: Database, uses: dict[str, datetime]) -> None:
    with new_app_login(jobforge_db, ["acme"]) as url, QueueClient.connect(url) as client:
        with pytest.raises(psycopg.Error) as info:
            client.prune_token_uses(now=T0)
        assert info.value.sqlstate == "42501"
    assert len(remaining(jobforge_db)) == 10


def test_without_the_worker_scope_the_prune_refuses_rather_than_finding_nothing(
    jobforge_db: Database, uses: dict[str, datetime]
) -> None:
    with (
        jobforge_db.connect() as owner,
        pytest.raises(psycopg.Error, match="needs the worker scope"),
    ):
        owner.execute("SELECT jobforge.prune_token_uses_v1(10, %s)", (T0,))
    assert len(remaining(jobforge_db)) == 10


@pytest.mark.parametrize("batch", [0, -1, 50_001])
def test_a_batch_out_of_range_is_one_line(
    jobforge_db: Database, uses: dict[str, datetime], batch: int
) -> None:
    with (
        QueueClient.connect(jobforge_db.dsn) as worker,
        pytest.raises(errors.JobforgeError, match="the batch must be 1-50000"),
    ):
        worker.prune_token_uses(batch=batch, now=T0)
    assert len(remaining(jobforge_db)) == 10
