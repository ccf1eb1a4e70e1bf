"""The pytest plugin through pytester: fixtures, options, xdist sharing, no cost when unused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _postmasters() -> dict[int, Path]:
    """Running postmasters and their data directories."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"postgres") and b"-D" in cmdline:
                found[int(proc.name)] = Path(cmdline[cmdline.index(b"-D") + 1].decode())
    return found


def _postgres_pids() -> set[int]:
    return set(_postmasters())


def _gone(dsn: str) -> bool:
    """The local server behind `dsn` no longer runs and its files are deleted."""
    run_dir = Path(dsn.split("host=")[1].split()[0])
    return not run_dir.exists() and run_dir / "data" not in _postmasters().values()


def _wait_until(condition: object, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_fixtures_give_isolated_migrated_databases(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_first(jobforge_conn):
            jobforge_conn.execute("CREATE TABLE public.t (x int)")
            applied = jobforge_conn.execute("SELECT count(*) FROM jobforge.schema_migrations")
            assert applied.fetchone()[0] >= 1

        def test_second(jobforge_conn):
            assert jobforge_conn.execute("SELECT to_regclass('public.t')").fetchone() == (None,)

        def test_db_object(jobforge_db, jobforge_server):
            assert jobforge_db.name.startswith("jobforge_t_")
            assert jobforge_server.origin == "local"
            open("dsn.txt", "w").write(jobforge_server.dsn)

        def test_tx(jobforge_tx):
            jobforge_tx.execute("CREATE TABLE public.t (x int)")

        def test_tx_rolled_back(jobforge_tx):
            assert jobforge_tx.execute("SELECT to_regclass('public.t')").fetchone() == (None,)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=5)
    assert _wait_until(lambda: _gone((pytester.path / "dsn.txt").read_text()))


def test_an_unused_plugin_costs_nothing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import sys
        def pytest_sessionfinish(session):
            # the session's state (jobforge.provision.session) is loaded; no provider, no driver
            prefixes = ("jobforge.provision", "jobforge.db", "psycopg")
            light = {"jobforge.provision", "jobforge.provision.session"}
            loaded = sorted(m for m in sys.modules if m.startswith(prefixes) and m not in light)
            print("LOADED:", loaded)
        """
    )
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*LOADED: []*"])  # no server can start without these modules
    assert "--jobforge-database-url" in pytester.runpytest_subprocess("--help").stdout.str()


def test_xdist_workers_share_one_server_and_it_stops_at_the_end(pytester: pytest.Pytester) -> None:
    out = pytester.path / "dsns"
    out.mkdir()
    pytester.makepyfile(
        f"""
        import os, pytest

        @pytest.mark.parametrize("i", range(6))
        def test_records_dsn(jobforge_server, jobforge_conn, i):
            path = {str(out)!r} + "/" + os.environ.get("PYTEST_XDIST_WORKER", "main") + f"-{{i}}"
            open(path, "w").write(jobforge_server.dsn)
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=6)
    dsns = {p.read_text() for p in out.iterdir()}
    workers = {p.name.split("-")[0] for p in out.iterdir()}
    assert len(workers) == 2, workers
    assert len(dsns) == 1, dsns
    assert _wait_until(lambda: _gone(dsns.pop()))


def test_the_url_option_is_used(pytester: pytest.Pytester, jobforge_server: object) -> None:
    dsn = jobforge_server.dsn  # type: ignore[attr-defined]
    pytester.makepyfile(
        """
        def test_origin(jobforge_server, jobforge_conn):
            assert jobforge_server.origin == "url"
        """
    )
    result = pytester.runpytest_subprocess(f"--jobforge-database-url={dsn}")
    result.assert_outcomes(passed=1)


def test_the_ini_option_is_read(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\njobforge_provider = nope\n")
    pytester.makepyfile("def test_x(jobforge_server):\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # read, and refused before any test runs
    result.stderr.fnmatch_lines(["ERROR: jobforge: ini option jobforge_provider 'nope' is not *"])


def test_an_unreachable_url_option_names_host_and_port(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(jobforge_db):\n    pass\n")
    result = pytester.runpytest_subprocess("--jobforge-database-url=postgresql://u@127.0.0.1:1/x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # once, before any test (see below)
    result.stderr.fnmatch_lines(["ERROR: jobforge: cannot connect to Postgres at 127.0.0.1:1/x*"])


def test_factories_make_databases_from_other_migrations(pytester: pytest.Pytester) -> None:
    migrations = pytester.path / "mine"
    migrations.mkdir()
    (migrations / "0001_app.sql").write_text("CREATE TABLE public.app_table (x int);")
    pytester.makeconftest(
        f"""
        from jobforge.plugins.pytest import factories
        app_template = factories.template({str(migrations)!r})
        app_db = factories.database("app_template")
        """
    )
    pytester.makepyfile(
        """
        def test_app(app_db):
            with app_db.connect() as conn:
                found = conn.execute("SELECT to_regclass('public.app_table')").fetchone()[0]
                assert found is not None
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


@pytest.mark.parametrize("xdist", [False, True], ids=["plain", "xdist"])
def test_sigkill_of_pytest_leaves_no_server(pytester: pytest.Pytester, xdist: bool) -> None:
    marker = pytester.path / "started"
    pytester.makepyfile(
        f"""
        import time
        def test_hang(jobforge_conn):
            open({str(marker)!r}, "w").write("x")
            time.sleep(120)
        """
    )
    before = _postgres_pids()
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    args += ["-n", "1"] if xdist else []
    proc = subprocess.Popen(
        args, cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        assert _wait_until(marker.exists, timeout_s=60), "the test never started"
        started = {pid: d for pid, d in _postmasters().items() if pid not in before}
        assert started, "no server was started"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _wait_until(lambda: not (_postgres_pids() & set(started))), "postgres outlived pytest"
    run_dirs = [data_dir.parent for data_dir in started.values()]
    assert _wait_until(lambda: not any(d.exists() for d in run_dirs)), run_dirs


def test_queue_and_drain_fixtures_run_jobs_through_a_real_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from jobforge.worker import NonRetryable, Registry

        handlers = Registry()

        @handlers.handler("t.double")
        def double(payload, ctx):
            return {"twice": payload["n"] * 2}

        @handlers.handler("t.refuse")
        async def refuse(payload, ctx):
            raise NonRetryable("no")

        def test_drain(jobforge_queue, jobforge_drain):
            ok = jobforge_queue.enqueue("t.double", {"n": 21})
            bad = jobforge_queue.enqueue("t.refuse", {})
            report = jobforge_drain(handlers)
            assert report.counts["succeeded"] == 1
            assert report.counts["failed"] == 1
            assert jobforge_queue.result(ok.job_id) == {"twice": 42}
            assert jobforge_queue.get(bad.job_id).status == "failed"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
