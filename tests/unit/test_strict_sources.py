"""Strict mode (`jobforge.runtime.strict`): each uncontrolled source is reported at the runner's
file:line with its cause, severity and the values it returned; what libraries (and jobforge) do
inside is not blamed on the runner; everything replaced while watching is put back. No database.
"""

from __future__ import annotations

import builtins
import datetime
import glob
import io
import logging
import os
import pathlib
import platform
import random
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from os import getpid
from time import monotonic_ns
from typing import Any

import pytest

from jobforge.runtime import strict
from jobforge.runtime.strict import SOURCES, UncontrolledCall, Watch, watching

HERE = __file__


def line_after() -> int:
    """The line following the caller's."""
    return sys._getframe(1).f_lineno + 1


def only(watch: Watch, call: str) -> UncontrolledCall:
    found = [c for c in watch.calls if c.call == call]
    assert len(found) == 1, [c.render() for c in watch.calls]
    return found[0]


def test_a_monotonic_clock_is_reported_at_its_line_with_each_value() -> None:
    with watching(Watch()) as watch:
        first = line_after()
        a = time.monotonic_ns()
        second = line_after()
        b = time.monotonic_ns()
    calls = [c for c in watch.calls if c.call == "time.monotonic_ns"]
    assert [(c.file, c.line) for c in calls] == [(HERE, first), (HERE, second)]
    assert calls[0].values == (repr(a),)
    assert calls[1].values == (repr(b),)
    assert a != b
    assert calls[0].cause == "monotonic clock"
    assert calls[0].severity == "error"
    assert "ctx.now()" in calls[0].hint
    assert calls[0].render() == (
        f"time.monotonic_ns() at {HERE}:{first} — monotonic clock (use {calls[0].hint})"
    )


def test_values_accumulate_per_site_in_call_order_up_to_16() -> None:
    seen = []
    with watching(Watch()) as watch:
        line = line_after()
        for _ in range(20):
            seen.append(time.perf_counter_ns())
    call = only(watch, "time.perf_counter_ns")
    assert call.line == line + 1
    assert call.values == tuple(repr(v) for v in seen[:16])
    assert call.cause == "performance counter"


@pytest.mark.parametrize(
    ("fn", "call", "cause", "severity"),
    [
        (lambda: time.time(), "time.time", "wall clock", "error"),
        (lambda: time.monotonic(), "time.monotonic", "monotonic clock", "error"),
        (lambda: time.perf_counter(), "time.perf_counter", "performance counter", "error"),
        (lambda: time.process_time(), "time.process_time", "process CPU time", "error"),
        (lambda: time.process_time_ns(), "time.process_time_ns", "process CPU time", "error"),
        (lambda: time.thread_time(), "time.thread_time", "thread CPU time", "error"),
        (lambda: time.thread_time_ns(), "time.thread_time_ns", "thread CPU time", "error"),
        (lambda: time.localtime(), "time.localtime", "wall clock", "error"),
        (lambda: os.getpid(), "os.getpid", "process id", "error"),
        (lambda: os.getppid(), "os.getppid", "process id", "error"),
        (lambda: threading.get_ident(), "threading.get_ident", "thread id", "error"),
        (lambda: threading.get_native_id(), "threading.get_native_id", "thread id", "error"),
        (lambda: id(object()), "id", "object address (id)", "error"),
        (lambda: random.random(), "random.random", "random module", "error"),
        (lambda: random.randint(1, 6), "random.randint", "random module", "error"),
        (lambda: random.choice("abc"), "random.choice", "random module", "error"),
        (lambda: uuid.uuid4(), "uuid.uuid4", "random id (uuid4)", "error"),
        (lambda: uuid.uuid1(), "uuid.uuid1", "time-based id (uuid1)", "error"),
        (lambda: os.urandom(4), "os.urandom", "OS randomness", "error"),
        (lambda: secrets.token_hex(4), "secrets.token_hex", "OS randomness", "error"),
        (lambda: socket.gethostname(), "socket.gethostname", "host name", "warning"),
        (lambda: platform.node(), "platform.node", "host name", "warning"),
        (lambda: os.uname(), "os.uname", "host details", "warning"),
        (lambda: os.cpu_count(), "os.cpu_count", "CPU count", "warning"),
        (lambda: os.getenv("HOME"), "os.getenv('HOME')", "an environment variable", "warning"),
        (lambda: os.environ.get("HOME"), "os.environ.get('HOME')", "an environment variable",
         "warning"),
        (lambda: os.listdir(os.path.dirname(HERE)), "os.listdir", "directory listing order",
         "warning"),
        (lambda: glob.glob(os.path.dirname(HERE) + "/*.py"), "glob.glob",
         "directory listing order", "warning"),
    ],
)  # fmt: skip
def test_each_source_is_reported_with_its_value(
    fn: Callable[[], Any], call: str, cause: str, severity: str
) -> None:
    with watching(Watch()) as watch:
        value = fn()
    line = fn.__code__.co_firstlineno  # the lambda is the runner's code making the call
    found = only(watch, call)
    assert (found.file, found.line) == (HERE, line)
    assert (found.cause, found.severity) == (cause, severity)
    assert found.values == (strict._short(value),)
    assert len(watch.calls) == 1, [c.render() for c in watch.calls]


def test_sources_without_a_capturable_value_still_give_the_site() -> None:
    with watching(Watch()) as watch:
        now = line_after()
        datetime.datetime.now()
        today = line_after()
        datetime.date.today()
        walk = line_after()
        list(os.scandir(os.path.dirname(HERE)))
    assert (only(watch, "datetime.now").line, only(watch, "datetime.now").values) == (now, ())
    assert only(watch, "datetime.now").cause == "wall clock"
    assert only(watch, "date.today").line == today
    assert only(watch, "os.scandir").line == walk
    assert only(watch, "os.scandir").severity == "warning"


def test_an_environment_read_in_each_form() -> None:
    os.environ["JOBFORGE_STRICT_PROBE"] = "probe"
    os.environ["JOBFORGE_STRICT_API_TOKEN"] = "hunter2"
    try:
        with watching(Watch()) as watch:
            item = line_after()
            os.environ["JOBFORGE_STRICT_PROBE"]
            contains = line_after()
            assert "JOBFORGE_STRICT_PROBE" in os.environ
            missing = line_after()
            os.environ.get("JOBFORGE_STRICT_MISSING")
            secret = line_after()
            os.environ.get("JOBFORGE_STRICT_API_TOKEN")
            iterate = line_after()
            list(os.environ)
    finally:
        del os.environ["JOBFORGE_STRICT_PROBE"], os.environ["JOBFORGE_STRICT_API_TOKEN"]
    got = {c.call: (c.line, c.values, c.severity) for c in watch.calls}
    assert got["os.environ['JOBFORGE_STRICT_PROBE']"] == (item, ("'probe'",), "warning")
    assert got["'JOBFORGE_STRICT_PROBE' in os.environ"] == (contains, ("True",), "warning")
    assert got["os.environ.get('JOBFORGE_STRICT_MISSING')"] == (missing, ("None",), "warning")
    assert got["os.environ.get('JOBFORGE_STRICT_API_TOKEN')"][:2] == (secret, ("'[redacted]'",))
    assert got["os.environ (iteration)"][0] == iterate
    assert all(c.cause == "an environment variable" for c in watch.calls)


def test_reads_under_proc_are_blamed_on_the_nearest_user_frame() -> None:
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc here")
    with watching(Watch()) as watch:
        via_open = line_after()
        with open("/proc/self/stat") as f:
            f.read()
        via_io = line_after()
        with io.open("/proc/self/stat") as f:  # noqa: UP020
            f.read()
        via_path = line_after()
        text = pathlib.Path("/proc/self/stat").read_text()
        via_os = line_after()
        os.close(os.open("/proc/self/stat", os.O_RDONLY))
        with open(HERE) as f:  # an ordinary file: not reported
            f.read()
    calls = {(c.call, c.line): c for c in watch.calls}
    assert set(calls) == {
        ("open('/proc/self/stat')", via_open),
        ("open('/proc/self/stat')", via_io),
        ("Path.read_text('/proc/self/stat')", via_path),
        ("os.open('/proc/self/stat')", via_os),
    }
    assert calls[("Path.read_text('/proc/self/stat')", via_path)].values == (strict._short(text),)
    assert calls[("open('/proc/self/stat')", via_open)].values == ()
    assert {c.cause for c in watch.calls} == {"a read under /proc"}
    assert {c.severity for c in watch.calls} == {"error"}


def test_reads_under_sys_have_their_own_cause() -> None:
    path = "/sys/kernel/mm"
    if not os.path.isdir(path):
        pytest.skip("no /sys here")
    with watching(Watch()) as watch:
        line = line_after()
        pathlib.Path("/sys/kernel").is_dir()  # a stat, not a read: not reported
        with pytest.raises(IsADirectoryError):
            open(path)  # noqa: SIM115
    found = only(watch, f"open({path!r})")
    assert (found.line, found.cause, found.severity) == (line + 2, "a read under /sys", "error")


def test_a_repr_is_reported_only_when_it_shows_an_address() -> None:
    class Plain:
        pass

    with watching(Watch()) as watch:
        repr([1, 2])
        repr("text")
        line = line_after()
        shown = repr(Plain())
    call = only(watch, "repr")
    assert call.line == line
    assert call.values == (strict._short(shown),)
    assert "0x" in call.values[0]


def test_listing_order_is_not_reported_when_the_listing_is_sorted() -> None:
    folder = os.path.dirname(HERE)
    with watching(Watch()) as watch:
        sorted(os.listdir(folder))
        len(os.listdir(folder))
        sorted(pathlib.Path(folder).iterdir())
        sorted(p.name for p in pathlib.Path(folder).iterdir())
        line = line_after()
        names = [p.name for p in pathlib.Path(folder).iterdir()]
    assert [(c.call, c.line) for c in watch.calls] == [("os.listdir", line)]
    assert names


def test_deterministic_operations_are_not_reported() -> None:
    rng = random.Random(7)
    with watching(Watch()) as watch:
        data = {"b": 1, "a": 2}
        sorted(data)
        list(data.items())
        rng.random()
        rng.randint(1, 9)
        random.Random(42).random()
        hash(12)
        repr({"x": [1, 2, 3]})
        "-".join(str(i) for i in range(5))
    assert watch.calls == []


def test_aliases_bound_in_user_modules_are_replaced_and_give_values() -> None:
    with watching(Watch()) as watch:
        assert globals()["getpid"] is not sys.modules["posix"].getpid  # replaced while watched
        pid_line = line_after()
        pid = getpid()
        clock_line = line_after()
        tick = monotonic_ns()
    assert only(watch, "os.getpid").line == pid_line
    assert only(watch, "os.getpid").values == (repr(pid),)
    assert only(watch, "time.monotonic_ns").line == clock_line
    assert only(watch, "time.monotonic_ns").values == (repr(tick),)
    assert globals()["getpid"] is os.getpid
    assert globals()["monotonic_ns"] is time.monotonic_ns
    assert type(os.getpid).__name__ == "builtin_function_or_method"


class Escaped:
    clock = time.time_ns  # bound before any watch: no wrapper reaches it


def test_a_reference_that_escaped_the_wrappers_is_still_found() -> None:
    with watching(Watch()) as watch:
        line = line_after()
        Escaped.clock()
    found = only(watch, "time.time_ns")
    assert (found.line, found.values) == (line, ())


def test_library_internals_are_not_blamed_on_the_runner() -> None:
    logger = logging.getLogger("jobforge.tests.strict")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    with watching(Watch()) as watch:
        logger.warning("a message")  # time.time_ns and os.getpid inside logging
        line = line_after()
        uuid.uuid4()  # os.urandom inside uuid4
        secrets.token_bytes(8)
    blamed = [c for c in watch.calls if c.severity != "info"]
    assert sorted(c.call for c in blamed) == ["secrets.token_bytes", "uuid.uuid4"]
    assert only(watch, "uuid.uuid4").line == line
    # logging's read of the clock is kept as evidence only (severity info, never reported)
    [clock] = [c for c in watch.calls if c.severity == "info"]
    assert clock.call == "time.time() inside logging"
    assert clock.cause == "the wall clock, read inside a library"


def test_a_jobforge_frame_in_between_stops_the_attribution(tmp_path: pathlib.Path) -> None:
    from jobforge import migrate
    from jobforge.runtime import redact

    os.environ.pop(redact.KEY_ENV, None)
    with watching(Watch()) as watch:
        redact.key_from_env()  # jobforge reads the environment: not the runner's doing
        # jobforge -> pathlib's iterdir -> os.listdir: library frames, then jobforge's
        assert migrate.discover(tmp_path) == []
        line = line_after()
        list(tmp_path.iterdir())  # the same from the runner's own code is reported
    assert [(c.call, c.line) for c in watch.calls] == [("os.listdir", line)]


def test_no_library_frame_carries_a_call_past_jobforge(tmp_path: pathlib.Path) -> None:
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc here")
    import jobforge

    namespace: dict[str, Any] = {}
    fake = os.path.join(os.path.dirname(jobforge.__file__), "_strict_probe.py")
    source = "import shutil\ndef copy(a, b):\n    shutil.copyfile(a, b)\n"
    exec(compile(source, fake, "exec"), namespace)  # a function of jobforge's, as frames go
    with watching(Watch()) as watch:
        namespace["copy"]("/proc/self/stat", tmp_path / "a")  # jobforge -> shutil -> open
        line = line_after()
        shutil.copyfile("/proc/self/stat", tmp_path / "b")  # the runner -> shutil -> open
    assert [(c.call, c.line) for c in watch.calls] == [("open('/proc/self/stat')", line)]


def test_everything_is_restored_after_the_block() -> None:
    before = {
        (name, attr): getattr(module, attr)
        for module, name in ((time, "time"), (os, "os"), (builtins, "builtins"), (io, "io"))
        for attr in ("monotonic_ns", "getpid", "open", "id", "repr", "time")
        if hasattr(module, attr)
    }
    environ_dict = dict(vars(type(os.environ)))
    socket_dict = dict(vars(socket.socket))
    profile = sys.getprofile()
    with watching(Watch()):
        assert time.monotonic_ns is not before[("time", "monotonic_ns")]
        assert builtins.open is not before[("builtins", "open")]
    after = {key: getattr(sys.modules[key[0]], key[1]) for key in before}
    assert all(after[k] is before[k] for k in before)
    assert dict(vars(type(os.environ))) == environ_dict
    assert dict(vars(socket.socket)) == socket_dict
    assert sys.getprofile() is profile


def test_everything_is_restored_after_an_exception() -> None:
    original = time.monotonic_ns
    watch = Watch()

    def run() -> None:
        with watching(watch):
            time.monotonic_ns()
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        run()
    assert time.monotonic_ns is original
    assert os.environ.__class__.__dict__.get("get") is None
    assert len(watch.calls) == 1


def test_a_source_raising_is_reported_and_raises_the_same() -> None:
    with watching(Watch()) as watch:
        line = line_after()
        with pytest.raises(KeyError, match="JOBFORGE_STRICT_NOT_SET"):
            os.environ["JOBFORGE_STRICT_NOT_SET"]
        with pytest.raises(FileNotFoundError):
            open("/proc/jobforge-not-there")  # noqa: SIM115
    found = only(watch, "os.environ['JOBFORGE_STRICT_NOT_SET']")
    assert (found.line, found.values) == (line + 1, ())


def test_open_keeps_working_for_every_caller() -> None:
    class Holder:
        opener = open  # bound while watching would make it a method if open were a function

    with watching(Watch()):

        class Late:
            opener = open

        late: Any = Late()
        with late.opener(HERE) as f:
            assert f.read(10)
        holder: Any = Holder()
        with holder.opener(HERE, "rb") as g:
            assert isinstance(g, io.BufferedReader)
        assert isinstance(pathlib.Path(HERE).read_bytes(), bytes)


def test_two_overlapping_watches_on_two_threads() -> None:
    original = time.monotonic_ns
    first_in = threading.Event()
    second_done = threading.Event()
    watches = {"a": Watch(), "b": Watch()}
    lines: dict[str, int] = {}

    def a() -> None:
        with watching(watches["a"]):
            lines["a"] = line_after()
            time.monotonic_ns()
            first_in.set()
            second_done.wait(5)
            lines["a2"] = line_after()
            os.getpid()
        # b ended first; a's end restores

    def b() -> None:
        first_in.wait(5)
        with watching(watches["b"]):
            lines["b"] = line_after()
            os.getppid()
        second_done.set()
        assert time.monotonic_ns is not original  # a is still watching

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [(c.call, c.line) for c in watches["a"].calls] == [
        ("time.monotonic_ns", lines["a"]),
        ("os.getpid", lines["a2"]),
    ]
    assert [(c.call, c.line) for c in watches["b"].calls] == [("os.getppid", lines["b"])]
    assert time.monotonic_ns is original
    assert os.getpid.__class__.__name__ == "builtin_function_or_method"


def test_an_unwatched_thread_passes_through() -> None:
    seen: list[int] = []

    def other() -> None:
        seen.append(time.monotonic_ns())
        seen.append(os.getpid())

    with watching(Watch()) as watch:
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(5)
    assert len(seen) == 2
    assert watch.calls == []


def test_asyncio_tasks_each_see_their_own_watch() -> None:
    import asyncio

    async def runner(watch: Watch, gate: asyncio.Event, mine: asyncio.Event) -> int:
        with watching(watch):
            await gate.wait()
            line = line_after()
            time.monotonic_ns()
            mine.set()
            await asyncio.sleep(0)
        return line

    async def main() -> tuple[int, int]:
        gate, done_a, done_b = asyncio.Event(), asyncio.Event(), asyncio.Event()
        ta = asyncio.ensure_future(runner(watches[0], gate, done_a))
        tb = asyncio.ensure_future(runner(watches[1], gate, done_b))
        await asyncio.sleep(0)
        gate.set()
        return await ta, await tb

    watches = [Watch(), Watch()]
    line_a, line_b = asyncio.run(main())
    assert [len(w.calls) for w in watches] == [1, 1]
    assert [w.calls[0].line for w in watches] == [line_a, line_b]


def test_the_table_names_a_known_cause_for_every_source() -> None:
    assert all(s.cause in strict.CAUSES for s in SOURCES)
    assert len({t for s in SOURCES for t in s.targets}) == sum(len(s.targets) for s in SOURCES)


def test_render_without_parentheses_when_the_call_has_them() -> None:
    call = UncontrolledCall("open('/proc/uptime')", "runner.py", 12, "a read under /proc")
    assert call.render() == (
        "open('/proc/uptime') at runner.py:12 — a read under /proc (use a value passed in the "
        "input)"
    )
    assert (
        UncontrolledCall("os.getpid", "r.py", 1, "process id")
        .render()
        .startswith("os.getpid() at r.py:1 — process id")
    )


def test_the_wall_clock_moves_for_the_watched_code_and_its_libraries_only() -> None:
    shift = 2 * 86_400
    with watching(Watch(clock_shift_s=shift)) as watch:
        direct = time.time()
        today = datetime.date.today()  # a C method that reads time.time
        logged = logging.makeLogRecord({}).created  # a library's read
    real = time.time()
    assert direct - real > shift - 60
    assert today == (datetime.datetime.now() + datetime.timedelta(seconds=shift)).date()
    assert logged - real > shift - 60
    # the runner's own reads (date.today() reads time.time too), each with its moved value
    reads = [c for c in watch.calls if c.call == "time.time"]
    assert len(reads) == 2
    assert all(float(c.values[0]) - real > shift - 60 for c in reads)
    # jobforge's own reads are never moved, directly or through a library: they stay real
    import jobforge

    namespace: dict[str, Any] = {}
    fake = os.path.join(os.path.dirname(jobforge.__file__), "_strict_clock_probe.py")
    source = (
        "import time, logging\ndef now():\n    return time.time()\n"
        "def logged():\n    return logging.makeLogRecord({}).created\n"
    )
    exec(compile(source, fake, "exec"), namespace)  # functions of jobforge's, as frames go
    with watching(Watch(clock_shift_s=shift)) as watch:
        ours, ours_logged = namespace["now"](), namespace["logged"]()
    assert abs(ours - time.time()) < 60
    assert abs(ours_logged - time.time()) < 60
    assert watch.calls == []


@pytest.mark.parametrize("spelled", ["//proc/uptime", "/./proc/uptime", "/tmp/../proc/uptime"])
def test_a_read_under_proc_is_seen_however_the_path_is_spelled(spelled: str) -> None:
    if not os.path.exists("/proc/uptime"):
        pytest.skip("no /proc here")
    with watching(Watch()) as watch:
        line = line_after()
        with open(spelled) as f:
            f.read()
    found = only(watch, f"open({spelled!r})")
    assert (found.line, found.cause) == (line, "a read under /proc")


def test_an_external_program_is_a_warning_at_the_runners_line() -> None:
    with watching(Watch()) as watch:
        line = line_after()
        subprocess.run(["true"], check=True)
    found = only(watch, "subprocess('true')")
    assert (found.line, found.severity, found.cause) == (line, "warning", "an external program")


def test_home_and_working_directory_read_through_path_helpers_are_warnings() -> None:
    with watching(Watch()) as watch:
        line = line_after()
        os.path.expanduser("~"), pathlib.Path.home(), os.path.abspath("x"), pathlib.Path.cwd()
    found = sorted({(c.cause, c.line, c.severity) for c in watch.calls})
    assert found == [
        ("an environment variable", line, "warning"),
        ("working directory", line, "warning"),
    ]
