"""The claim's fairness across tenants and its limits (migrations/0010) on a real database:
shares of one claim, priority within a tenant, caps per type and tenant, the token bucket's
refill on the caller's clock, who may set limits, and a real worker draining a tenant's backlog
while another tenant's few jobs go through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

from jobforge import db, errors
from jobforge.provision import Database
from jobforge.queue import NewJob, QueueClient, bulk
from jobforge.queue.limits import clear_limit, list_limits, set_limit
from jobforge.worker import Registry, WorkerConfig, drain

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def conn(jobforge_db: Database) -> Iterator[db.Connection]:
    with jobforge_db.connect() as connection:
        yield connection


def enqueue(dsn: str, tenant: str, n: int, job_type: str = "ops.scan", **fields: Any) -> list[int]:
    with QueueClient.connect(dsn, tenant=tenant, max_size=1) as client:
        jobs = [NewJob(type=job_type, payload={"i": i}, run_at=T0, **fields) for i in range(n)]
        return [e.job_id for e in client.enqueue_many(jobs, now=T0)]


def claim(conn: db.Connection, limit: int, now: datetime = T0, worker: str = "w1") -> list[Any]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(
        "SELECT * FROM jobforge.claim_v1(%s, %s, NULL, 30, %s)", (worker, limit, now)
    ).fetchall()


def finish(conn: db.Connection, job: dict[str, Any], now: datetime = T0) -> None:
    conn.execute(
        "SELECT jobforge.finish_v1(%s, %s, %s, %s, NULL, NULL, %s)",
        ("w1", [job["id"]], [job["lease_token"]], ["succeeded"], now),
    )


def test_a_backlog_does_not_take_another_tenants_share(
    jobforge_db: Database, conn: db.Connection
) -> None:
    enqueue(jobforge_db.dsn, "big", 50)
    enqueue(jobforge_db.dsn, "small", 3)
    got = claim(conn, 10)
    assert sorted(j["tenant_id"] for j in got).count("small") == 3
    assert len(got) == 10  # the small tenant's unused share goes to the big one


def test_one_tenant_claims_in_priority_order(jobforge_db: Database, conn: db.Connection) -> None:
    low = enqueue(jobforge_db.dsn, "acme", 3, priority=5)
    high = enqueue(jobforge_db.dsn, "acme", 3, priority=1)
    assert [j["id"] for j in claim(conn, 4)] == [*high, low[0]]


def test_tenants_share_rounds_and_priority_orders_within_each(
    jobforge_db: Database, conn: db.Connection
) -> None:
    a_low = enqueue(jobforge_db.dsn, "a", 4, priority=9)
    a_high = enqueue(jobforge_db.dsn, "a", 1, priority=0)
    b = enqueue(jobforge_db.dsn, "b", 4, priority=5)
    got = {j["id"] for j in claim(conn, 4)}
    assert got == {a_high[0], a_low[0], b[0], b[1]}


def test_a_type_cap_holds_until_a_job_of_the_type_finishes(
    jobforge_db: Database, conn: db.Connection
) -> None:
    set_limit(conn, "type", "ops.capped", max_running=2)
    enqueue(jobforge_db.dsn, "acme", 5, "ops.capped")
    enqueue(jobforge_db.dsn, "acme", 3, "ops.free")
    first = claim(conn, 10)
    assert sorted(j["type"] for j in first) == ["ops.capped"] * 2 + ["ops.free"] * 3
    assert claim(conn, 10) == []
    finish(conn, next(j for j in first if j["type"] == "ops.capped"))
    assert [j["type"] for j in claim(conn, 10)] == ["ops.capped"]


def test_a_tenant_cap_leaves_the_room_to_other_tenants(
    jobforge_db: Database, conn: db.Connection
) -> None:
    set_limit(conn, "tenant", "noisy", max_running=1)
    enqueue(jobforge_db.dsn, "noisy", 5)
    enqueue(jobforge_db.dsn, "quiet", 2)
    got = claim(conn, 10)
    assert sorted(j["tenant_id"] for j in got) == ["noisy", "quiet", "quiet"]
    assert claim(conn, 10) == []


def test_the_bucket_refills_by_elapsed_time_up_to_its_burst(
    jobforge_db: Database, conn: db.Connection
) -> None:
    conn.execute("SELECT jobforge.set_limit_v1('type', 'ops.rated', NULL, 2, 3, %s)", (T0,))
    enqueue(jobforge_db.dsn, "acme", 30, "ops.rated")
    assert len(claim(conn, 10, T0)) == 3  # a full bucket: the burst
    assert len(claim(conn, 10, T0 + timedelta(seconds=0.4))) == 0  # 0.8 tokens
    assert len(claim(conn, 10, T0 + timedelta(seconds=0.5))) == 1  # 1.0
    assert len(claim(conn, 10, T0 + timedelta(seconds=1.5))) == 2  # 2.0
    assert len(claim(conn, 10, T0 + timedelta(seconds=20))) == 3  # capped at the burst
    (tokens,) = conn.execute(
        "SELECT tokens FROM jobforge.queue_limits WHERE key = 'ops.rated'"
    ).fetchone() or (None,)
    assert tokens == 0


def test_no_limits_row_means_no_limit(jobforge_db: Database, conn: db.Connection) -> None:
    set_limit(conn, "type", "ops.scan", max_running=1)
    assert clear_limit(conn, "type", "ops.scan")
    assert not clear_limit(conn, "type", "ops.scan")
    assert list_limits(conn) == []
    enqueue(jobforge_db.dsn, "acme", 5)
    assert len(claim(conn, 10)) == 5


def test_limits_are_listed(conn: db.Connection) -> None:
    set_limit(conn, "type", "ops.rated", rate_per_s=5)
    set_limit(conn, "tenant", "acme", max_running=3)
    rows = [(x.scope, x.key, x.max_running, x.rate_per_s, x.burst) for x in list_limits(conn)]
    assert rows == [("tenant", "acme", 3, None, None), ("type", "ops.rated", None, 5.0, 5.0)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("planet", "x", 1, None, None), "limit scope 'planet' is unknown: use type or tenant"),
        (("type", "ops.x", 0, None, None), "max_running 0 is out of range 1-1000000"),
        (("type", "ops.x", -3, None, None), "max_running -3 is out of range 1-1000000"),
        (
            ("type", "ops.x", None, 0.0, None),
            "rate_per_s 0 is out of range 0.000001-1000000",
        ),
        (
            ("type", "ops.x", None, 5e-324, None),
            "rate_per_s 5e-324 is out of range 0.000001-1000000",
        ),
        (("tenant", "acme", None, 1.0, None), "rate limits are per job type, not per tenant"),
        (("type", "ops.x", None, None, None), "a limit needs max_running or rate_per_s"),
        (("type", "Bad Type", 1, None, None), "limit key 'Bad Type' is not a valid job type"),
        (("type", "ops.x", None, 1.0, 0.5), "burst 0.5 is out of range 1-1000000"),
    ],
)
def test_the_database_refuses_a_bad_limit_in_one_line(
    conn: db.Connection, args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("SELECT jobforge.set_limit_v1(%s, %s, %s, %s, %s)", args)
    assert caught.value.diag.message_primary == message
    assert caught.value.diag.sqlstate == "JF006"


def test_an_app_login_may_not_set_or_read_limits(conn: db.Connection) -> None:
    conn.execute("SET ROLE jobforge_app")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT jobforge.set_limit_v1('tenant', 'acme', 1000)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM jobforge.queue_limits")


def test_the_client_refuses_a_bad_limit_before_connecting(conn: db.Connection) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"^--max-running 0 is out of range"):
        set_limit(conn, "type", "ops.x", max_running=0)


def test_a_small_tenant_finishes_before_a_big_backlog_has_gone_far(
    jobforge_db: Database, conn: db.Connection
) -> None:
    """Tenant a queues 20,000 jobs, then b queues 100: with a real worker draining, b's jobs all
    finish before a's 2,000th does (finish order: the `succeeded` events' ids)."""
    big = enqueue(jobforge_db.dsn, "a", 20_000, "ops.noop")
    small = enqueue(jobforge_db.dsn, "b", 100, "ops.noop")
    registry = Registry()
    registry.register("ops.noop", lambda payload, ctx: None)
    config = WorkerConfig(name="w1", concurrency=20, poll_min_s=0.02, poll_max_s=0.2)
    report = drain(jobforge_db.dsn, registry, config, timeout_s=300)
    assert report is not None
    order = [
        job_id
        for (job_id,) in conn.execute(
            "SELECT job_id FROM jobforge.job_event_log WHERE kind = 'succeeded' ORDER BY id"
        ).fetchall()
    ]
    assert len(order) == len(big) + len(small)
    position = {job_id: n for n, job_id in enumerate(order)}
    last_small = max(position[j] for j in small)
    a_2000th = sorted(position[j] for j in big)[1999]
    assert last_small < a_2000th, (last_small, a_2000th)


# Held under pressure (migrations/0011): what an attacker's review of 0010 found.


def test_a_claim_locks_only_the_jobs_it_returns(jobforge_db: Database) -> None:
    """Fifty tenants wait; a claim of 4 still open in its transaction leaves every other job
    to a concurrent claim (0010 locked a share of every tenant and kept 4)."""
    for n in range(50):
        enqueue(jobforge_db.dsn, f"t{n:02}", 3)
    with jobforge_db.connect(autocommit=False) as first, jobforge_db.connect() as second:
        taken = claim(first, 4)  # transaction left open: its locks held
        assert len(taken) == 4
        assert len({j["tenant_id"] for j in taken}) == 4  # one turn each
        again = claim(second, 146)
        assert len(again) == 146
        assert not {j["id"] for j in taken} & {j["id"] for j in again}
        first.rollback()


def test_leftover_room_goes_round_in_turns_not_to_a_back_dated_backlog(
    jobforge_db: Database, conn: db.Connection
) -> None:
    """a has one due job, b back-dates its run_at by a year, c queues at T0: the room a leaves
    is shared by b and c, not taken by b's older run_at (0010 refilled in run_at order)."""
    enqueue(jobforge_db.dsn, "a", 1)
    with QueueClient.connect(jobforge_db.dsn, tenant="b", max_size=1) as client:
        old = T0 - timedelta(days=365)
        client.enqueue_many(
            [NewJob(type="ops.scan", payload={"i": i}, run_at=old) for i in range(10)], now=T0
        )
    enqueue(jobforge_db.dsn, "c", 10)
    got = [j["tenant_id"] for j in claim(conn, 9)]
    assert (got.count("a"), got.count("b"), got.count("c")) == (1, 4, 4)


def test_the_share_goes_to_tenants_with_due_jobs_of_the_types_asked(
    jobforge_db: Database, conn: db.Connection
) -> None:
    enqueue(jobforge_db.dsn, "a", 10)
    with QueueClient.connect(jobforge_db.dsn, tenant="later", max_size=1) as client:
        tomorrow = T0 + timedelta(days=1)
        client.enqueue_many([NewJob(type="ops.scan", payload={}, run_at=tomorrow)], now=T0)
    enqueue(jobforge_db.dsn, "other", 5, "ops.other")
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    got = cur.execute(
        "SELECT * FROM jobforge.claim_v1('w1', 4, ARRAY['ops.scan'], 30, %s)", (T0,)
    ).fetchall()
    assert [j["tenant_id"] for j in got] == ["a"] * 4


def test_cancel_and_reschedule_cannot_run_past_a_cap(
    jobforge_db: Database, conn: db.Connection
) -> None:
    """A canceled job's handler runs until its worker stops it: until the worker acknowledges
    the cancel (or the lease it held ends) it counts toward the cap, so a tenant that cancels and
    reschedules cannot start a second copy beside it."""
    set_limit(conn, "tenant", "acme", max_running=1)
    first_id, second_id = enqueue(jobforge_db.dsn, "acme", 2)
    (first,) = claim(conn, 5)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client:
        client.cancel(first_id, now=T0)
        assert claim(conn, 5) == []  # the canceled handler may still be running
        assert client.acknowledge_cancel("w1", first_id, first["lease_token"], None, now=T0)
        (second,) = claim(conn, 5)  # it has stopped: the room is back
        assert second["id"] == second_id
        finish(conn, second)
        client.reschedule(first_id, now=T0)
        (again,) = claim(conn, 5)
        assert again["id"] == first_id
        assert again["attempts"] == 2
        # cancel and reschedule at once: the old handler is never acknowledged (its heartbeat
        # finds the lease gone), so it counts until the lease it held would have ended
        client.cancel(first_id, now=T0)
        client.reschedule(first_id, now=T0)
    assert claim(conn, 5) == []
    assert claim(conn, 5, now=T0 + timedelta(seconds=29)) == []
    assert [j["id"] for j in claim(conn, 5, now=T0 + timedelta(seconds=31))] == [first_id]


def test_limits_refuse_a_transaction_that_is_not_read_committed(
    jobforge_db: Database, conn: db.Connection
) -> None:
    set_limit(conn, "type", "ops.scan", max_running=2)
    enqueue(jobforge_db.dsn, "acme", 3)
    with jobforge_db.connect(autocommit=False) as other:
        other.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(psycopg.Error) as caught:
            claim(other, 5)
    assert caught.value.diag.message_primary == (
        "claim: queue limits need READ COMMITTED transactions, and this one is REPEATABLE READ"
    )


def test_the_clients_claim_at_read_committed_whatever_the_default(
    jobforge_db: Database, conn: db.Connection
) -> None:
    """A database whose default isolation is REPEATABLE READ: jobforge's own calls still run at
    READ COMMITTED (both the one-round-trip flights and plain transactions), so caps hold."""
    conn.execute(
        pgsql.SQL("ALTER DATABASE {} SET default_transaction_isolation = 'repeatable read'").format(
            pgsql.Identifier(conn.info.dbname)
        )
    )
    set_limit(conn, "type", "ops.scan", max_running=2)
    enqueue(jobforge_db.dsn, "acme", 3)
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client:
        assert len(client.claim("w1", 5, now=T0)) == 2
        with client.transaction(worker=True) as tx:
            level = tx.execute("SHOW transaction_isolation").fetchone()
        assert level == ("read committed",)


def test_a_tenant_holding_its_own_jobs_locked_cannot_empty_others_claims(
    jobforge_db: Database, conn: db.Connection
) -> None:
    """A tenant's one due job, at the most urgent priority, held locked by a transaction left
    open (its own cancel, say): every claim of one still gets another tenant's job."""
    (held,) = enqueue(jobforge_db.dsn, "evil", 1, priority=0)
    enqueue(jobforge_db.dsn, "good", 20, priority=5)
    with jobforge_db.connect(autocommit=False) as locker:
        locker.execute("SELECT 1 FROM jobforge.jobs WHERE id = %s FOR UPDATE", (held,))
        got = [claim(conn, 1) for _ in range(20)]
        locker.rollback()
    assert [len(g) for g in got] == [1] * 20
    assert {g[0]["tenant_id"] for g in got} == {"good"}


def test_priority_never_decides_which_tenant_gets_a_turn(
    jobforge_db: Database, conn: db.Connection
) -> None:
    """Claims of one job while two tenants wait: the tenant whose jobs are all priority 0 does
    not take every turn from the one that used priority 5."""
    enqueue(jobforge_db.dsn, "urgent", 60, priority=0)
    enqueue(jobforge_db.dsn, "modest", 60, priority=5)
    turns = [claim(conn, 1)[0]["tenant_id"] for _ in range(60)]
    assert turns.count("modest") >= 15, turns  # ~30 expected; under 15 has odds below 1e-4


def test_a_bulk_cancel_and_reschedule_cannot_run_past_a_cap_either(
    jobforge_db: Database, conn: db.Connection
) -> None:
    set_limit(conn, "type", "ops.capped", max_running=1)
    (job_id,) = enqueue(jobforge_db.dsn, "acme", 1, "ops.capped")
    now = datetime.now(UTC)  # the bulk action keeps the database's clock
    (first,) = claim(conn, 5, now=now)
    assert first["id"] == job_id
    with QueueClient.connect(jobforge_db.dsn, tenant="acme", max_size=1) as client:
        flt = bulk.check_filter("cancel", ["running"], None, None)
        assert client.bulk("cancel", flt).changed == 1
        client.reschedule(job_id, reset_attempts=True)
    assert claim(conn, 5, now=now + timedelta(seconds=1)) == []  # it may still be running
    assert [j["id"] for j in claim(conn, 5, now=now + timedelta(seconds=31))] == [job_id]
