"""pytest hooks and fixtures: wiring only; the work is in `jobforge.provision`.

Importing this module costs only pytest and the standard library; jobforge's database code is
imported when a jobforge fixture is first requested.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from jobforge.plugins.pytest import checks
from jobforge.provision.session import ProvisionSession, Settings

if TYPE_CHECKING:
    from jobforge import db
    from jobforge.provision import Database, Server, Template
    from jobforge.queue import QueueClient
    from jobforge.worker import Registry, WorkerConfig, WorkerReport

SESSION_KEY = pytest.StashKey[ProvisionSession]()
_SHARED_DIR_KEY = pytest.StashKey[Path]()
_OPTIONS = (
    ("database_url", "use this Postgres server for scratch databases (creates and drops them "
     "there); same as JOBFORGE_SCRATCH_DATABASE_URL (JOBFORGE_DATABASE_URL is never used)"),
    ("provider", "where a throwaway server comes from: auto, url, docker or local"),
    ("golden_dir", "golden cases folder (default: [tool.jobforge] golden_dir, or golden/)"),
    ("runs", "in-process runs of each golden case, to find nondeterminism (default 2)"),
    ("fresh", "also run each golden case in a fresh interpreter with another hash seed: "
     "yes or no (default yes)"),
    ("bundles", "replay the bundles in this folder as test items (jobforge replay's engine)"),
    ("strict", "report a runner's calls to time, random, uuid, urandom, secrets and sockets "
     "during golden runs: yes or no (default yes)"),
)  # fmt: skip


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("jobforge", "jobforge: throwaway Postgres and runner contracts")
    for name, help_text in _OPTIONS:
        group.addoption(
            f"--jobforge-{name.replace('_', '-')}", dest=f"jobforge_{name}", help=help_text
        )
        parser.addini(f"jobforge_{name}", help_text, default=None)
    group.addoption(
        "--jobforge-refresh",
        dest="jobforge_refresh",
        action="store_true",
        default=None,
        help="write golden expectations (only when every run of a case agrees)",
    )
    parser.addini("jobforge_refresh", "write golden expectations", type="bool", default=False)
    group.addoption(
        "--jobforge-refresh-failures",
        dest="jobforge_refresh_failures",
        action="store_true",
        default=None,
        help="with --jobforge-refresh: also record a case whose run fails (raises, or its input "
        "is rejected) as its expectation; without it such a case is reported, not written",
    )
    parser.addini("jobforge_refresh_failures", "record failing runs as golden expectations too",
                  type="bool", default=False)  # fmt: skip
    hosts_help = (
        "a host the recording worker was allowed to reach (repeat), as its --http-allow-host: "
        "recorded exchanges replay without it; a request with no recording to it is then "
        "unrecorded, not refused (also [tool.jobforge] http_allow_hosts)"
    )
    group.addoption("--jobforge-http-allow-host", dest="jobforge_http_allow_hosts",
                    action="append", default=None, help=hosts_help)  # fmt: skip
    parser.addini("jobforge_http_allow_hosts", hosts_help, type="linelist", default=[])


def _setting(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"jobforge_{name}") or config.getini(f"jobforge_{name}")
    return str(value) if value else None


def pytest_configure(config: pytest.Config) -> None:
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    shared = workerinput.get("jobforge_shared_dir")
    config.stash[SESSION_KEY] = ProvisionSession(
        Settings(
            database_url=_setting(config, "database_url"),
            provider=_setting(config, "provider"),
            shared_dir=Path(shared) if shared else None,
            owner_pid=workerinput.get("jobforge_owner_pid"),
        )
    )
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistController(config), "jobforge-xdist-controller")
    config.addinivalue_line("markers", "jobforge_golden: a golden case of a runner (jobforge)")
    checks.check_options(config)  # a value that cannot mean anything: one line, exit 4
    from jobforge.errors import JobforgeError

    try:  # a runner module that fails to import, a bad key: one line, not an INTERNALERROR
        if _has_project(config) or _setting(config, "golden_dir"):
            _configure_golden(config)
        elif (golden := checks.golden_without_config(config.rootpath)) is not None:
            config.pluginmanager.register(checks.UnconfiguredHint(golden), "jobforge-hint")
        if bundles := _setting(config, "bundles"):
            _configure_bundles(config, bundles)
    except JobforgeError as exc:
        raise pytest.UsageError(f"jobforge: {exc}") from None


def _configure_bundles(config: pytest.Config, folder: str) -> None:
    from jobforge.config import ProjectConfig, find_config
    from jobforge.plugins.pytest import bundle_items

    project = find_config(config.rootpath) or ProjectConfig(root=config.rootpath)
    settings = bundle_items.settings_for(config.stash[SESSION_KEY], project, folder,
                                         _hosts(config))  # fmt: skip
    checks.bundles_folder(settings.folder, folder)
    config.stash[bundle_items.BUNDLES_KEY] = settings
    config.pluginmanager.register(bundle_items.BundlePlugin(settings), "jobforge-bundles")
    implicit = config.args_source != pytest.Config.ArgsSource.ARGS and settings.folder.is_dir()
    covered = any(settings.folder.is_relative_to(Path(a).resolve()) for a in config.args)
    if implicit and not covered:
        config.args.append(str(settings.folder))


def _hosts(config: pytest.Config) -> list[str]:
    """--jobforge-http-allow-host (repeated) and the ini's jobforge_http_allow_hosts lines."""
    given: list[str] = config.getoption("jobforge_http_allow_hosts") or []
    return [*given, *config.getini("jobforge_http_allow_hosts")]


def _has_project(config: pytest.Config) -> bool:
    """A [tool.jobforge] table in the rootdir's pyproject.toml (read without importing jobforge's
    heavier modules: a suite that does not use jobforge must not pay for it)."""
    import tomllib

    path = config.rootpath / "pyproject.toml"
    try:
        return "jobforge" in tomllib.loads(path.read_text()).get("tool", {})
    except (OSError, tomllib.TOMLDecodeError):
        return False


def _configure_golden(config: pytest.Config) -> None:
    from jobforge.config import ProjectConfig, find_config
    from jobforge.plugins.pytest import golden_items
    from jobforge.runtime.redact import key_from_env

    key_from_env()  # a bad redaction key fails the run before any case does
    project = find_config(config.rootpath) or ProjectConfig(root=config.rootpath)
    refresh = config.getoption("jobforge_refresh")
    failures = config.getoption("jobforge_refresh_failures")
    options = {
        "golden_dir": _setting(config, "golden_dir"),
        "runs": _setting(config, "runs"),
        "fresh": _setting(config, "fresh"),
        "strict": _setting(config, "strict"),
        "refresh": config.getini("jobforge_refresh") if refresh is None else refresh,
        "refresh_failures": (
            config.getini("jobforge_refresh_failures") if failures is None else failures
        ),
        "http_allow_hosts": _hosts(config),
    }
    if failures and not options["refresh"]:  # on the command line, it would silently do nothing
        raise pytest.UsageError(
            "jobforge: --jobforge-refresh-failures records failing runs only while refreshing: "
            "add --jobforge-refresh"
        )
    settings = golden_items.settings_for(config.stash[SESSION_KEY], project, options)
    config.stash[golden_items.SETTINGS_KEY] = settings
    config.pluginmanager.register(golden_items.GoldenPlugin(settings), "jobforge-golden")
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        for folder in (settings.golden_dir, settings.contracts_dir):
            covered = any(folder.is_relative_to(Path(a).resolve()) for a in config.args)
            if folder.is_dir() and not covered:
                config.args.append(str(folder))


class _XdistController:
    """In the xdist main process: tells workers where to share one server; stops it at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        if _SHARED_DIR_KEY not in self.config.stash:
            self.config.stash[_SHARED_DIR_KEY] = Path(tempfile.mkdtemp(prefix="jobforge-xdist-"))
        node.workerinput["jobforge_shared_dir"] = str(self.config.stash[_SHARED_DIR_KEY])
        node.workerinput["jobforge_owner_pid"] = os.getpid()


def pytest_unconfigure(config: pytest.Config) -> None:
    if SESSION_KEY in config.stash:
        config.stash[SESSION_KEY].close()
    if _SHARED_DIR_KEY in config.stash:
        from jobforge.provision import stop_shared

        shared = config.stash[_SHARED_DIR_KEY]
        stop_shared(shared)
        shutil.rmtree(shared, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Provide the session's server before the first test, when a collected test needs it: a
    server that cannot be had (an unreachable URL, no PostgreSQL anywhere) is then one usage
    error (exit 4) before anything runs, not an error in every test that needs it. Tests that do
    not need it start none; an xdist worker provides its server when a test asks (`server`)."""
    config = session.config
    if config.option.collectonly or getattr(config.option, "setupplan", False):
        return
    if hasattr(config, "workerinput") or not any(_needs_server(i) for i in session.items):
        return
    from jobforge.errors import JobforgeError

    try:
        config.stash[SESSION_KEY].server()
    except JobforgeError as exc:
        raise pytest.UsageError(f"jobforge: {exc}") from None


def _needs_server(item: pytest.Item) -> bool:
    """A test using a jobforge database fixture (all go through `jobforge_server`), a golden
    case or a replay bundle."""
    if "jobforge_server" in getattr(item, "fixturenames", ()):
        return True
    return bool(getattr(item, "needs_jobforge_server", False))


def _session(request: pytest.FixtureRequest) -> ProvisionSession:
    return request.config.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def jobforge_server(request: pytest.FixtureRequest) -> Server:
    """The session's throwaway Postgres server (shared by xdist workers)."""
    from jobforge.errors import JobforgeError

    try:
        return _session(request).server()
    except JobforgeError as exc:  # one line, whatever --tb says; tried once a session
        message = f"jobforge: {exc}"
    pytest.fail(message, pytrace=False)  # outside the except: no "during handling" chain


@pytest.fixture(scope="session")
def jobforge_template(request: pytest.FixtureRequest, jobforge_server: Server) -> Template:
    """jobforge's migrations applied once to a template database on the session server."""
    return _session(request).template()


@pytest.fixture
def jobforge_db(request: pytest.FixtureRequest, jobforge_template: Template) -> Iterator[Database]:
    """A fresh migrated database of its own for this test, dropped afterwards."""
    pool = _session(request).pool(jobforge_template)
    database = pool.acquire()
    yield database
    pool.release(database)


@pytest.fixture
def jobforge_conn(jobforge_db: Database) -> Iterator[db.Connection]:
    """An autocommit connection to this test's fresh database."""
    with jobforge_db.connect() as conn:
        yield conn


@pytest.fixture
def jobforge_tx(
    request: pytest.FixtureRequest, jobforge_template: Template
) -> Iterator[db.Connection]:
    """A connection in a transaction rolled back after the test (commit() inside raises)."""
    conn = _session(request).tx_connection()
    with conn.transaction(force_rollback=True):
        yield conn


#: The tenant `jobforge_queue` acts for.
TEST_TENANT = "test"


@pytest.fixture
def jobforge_queue(jobforge_db: Database) -> Iterator[QueueClient]:
    """A queue client on this test's fresh database, acting for tenant "test"."""
    from jobforge.queue import QueueClient

    with QueueClient.connect(jobforge_db.dsn, tenant=TEST_TENANT, max_size=2) as client:
        yield client


@pytest.fixture
def jobforge_drain(jobforge_db: Database) -> Any:
    """`drain(registry, config=None)`: run every due job of this test's database through a real
    in-process worker, returning its `WorkerReport` once nothing is due, running or unrecorded."""
    from jobforge.worker import drain

    def run(registry: Registry, config: WorkerConfig | None = None) -> WorkerReport:
        return drain(jobforge_db.dsn, registry, config)

    return run


@pytest.fixture
def jobforge_run(jobforge_db: Database) -> Any:
    """`jobforge_run(runner_id, input, environment=None)`: run a declared runner once through
    the real queue and worker on this test's database, with the recorder (and strict mode), and
    return its run record (format jobforge.run/1)."""
    from jobforge.contracts import find_runner
    from jobforge.golden.case import GoldenCase
    from jobforge.golden.execute import UNREDACTED, run_case

    def run(runner_id: str, input: dict[str, Any], environment: Any = None) -> dict[str, Any]:
        definition = find_runner(runner_id)
        case = GoldenCase(input=input, environment=environment)
        record = run_case(jobforge_db.dsn, definition, case)
        record.pop(UNREDACTED, None)  # the record as stored
        return record

    return run


@pytest.fixture
def jobforge_check_runner(jobforge_db: Database) -> Any:
    """`jobforge_check_runner(runner_id, max_examples=20)`: an opt-in property test. For inputs
    drawn from the runner's input model (`jobforge.strategies.inputs`), run it twice through the
    real queue: no unexpected crash (only `succeeded`, or `failed` by a NonRetryable), a valid
    output, and two runs with identical output, trace and artifact hashes."""
    missing = ""
    try:  # hypothesis is part of the test stack (jobforge[testing]), not of a core install
        from hypothesis import HealthCheck, given, settings
    except ImportError as exc:
        from jobforge.errors import MissingTestStack

        missing = f"jobforge: {MissingTestStack.needed_by('jobforge_check_runner', exc)}"
    if missing:
        pytest.fail(missing, pytrace=False)  # outside the except: no "during handling" chain

    from jobforge.contracts import find_runner
    from jobforge.golden.case import GoldenCase
    from jobforge.golden.execute import UNREDACTED, run_case
    from jobforge.strategies import inputs

    def check(runner_id: str, max_examples: int = 20) -> None:
        definition = find_runner(runner_id)
        strategy = inputs(definition)

        @settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(strategy)
        def runs_cleanly_and_repeatably(payload: dict[str, Any]) -> None:
            case = GoldenCase(input=payload)
            first = run_case(jobforge_db.dsn, definition, case)
            assert first["status"] in ("succeeded", "failed"), (
                f"{runner_id} crashed on valid input {payload!r}: {first['status']}: "
                f"{(first.get('error') or {}).get('message')}"
            )
            second = run_case(jobforge_db.dsn, definition, case)
            # compared as the runs produced them: redaction must not hide a difference
            keys = ("status", "error", "output", "trace_sha256", "artifacts")
            one, two = first[UNREDACTED], second[UNREDACTED]
            assert {k: one.get(k) for k in keys} == {k: two.get(k) for k in keys}, (
                f"{runner_id} gave two different runs for input {payload!r}"
            )

        runs_cleanly_and_repeatably()

    return check
