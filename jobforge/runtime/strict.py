"""Strict mode: while a runner executes, report calls to the uncontrolled sources of time,
randomness, ids, the process, the machine and outside I/O that RunContext replaces, each with the
file and line in the runner's code, a cause, a severity and the values it returned there.

How a call is seen:
- Wrappers. While at least one watch is active, every target of `SOURCES` (`time.monotonic_ns`,
  `os.getpid`, `builtins.open`, `os._Environ.__getitem__`, ...) is replaced by a wrapper, and so is
  every alias of one bound in a user module's globals (`from os import getpid`). A wrapper looks at
  the watch of the current context (a ContextVar: a thread, or an asyncio task) and at the frame
  calling it; when both say "a watched runner's own code", it calls the original, records the site
  and the value returned, and returns exactly what the original returned (or raises what it
  raised). Otherwise it passes straight through. Everything is put back when the last watch ends.
- A profile hook (`sys.setprofile`, on the watching thread) is the fallback: it still finds the site
  of a source whose reference escaped the patching (kept in a class attribute, a C type's method
  such as `datetime.now`), without the value when the source is a C function.

A call is blamed on the runner only when the frame making it is user code (not jobforge, the
standard library or an installed package), so what a library does internally is not blamed on the
runner. Some sources (`SOURCES[...].through`) are followed through library frames to the nearest
user frame (`Path.read_text('/proc/uptime')`, `os.environ.get`, `Path.iterdir`), never through a
jobforge frame.

`SOURCES` is a table: one line per source, naming where it lives, what it is (`cause`, whose
severity and hint come from `CAUSES`) and, when needed, which calls count (`label`) and which
value to keep (`value`).
"""

from __future__ import annotations

import ast
import builtins
import contextvars
import functools
import importlib
import os
import re
import reprlib
import sys
import sysconfig
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal

from jobforge.runtime.redact import DEFAULT_SECRET_KEYS, DEFAULT_SECRET_SUFFIXES

#: "info": evidence only, never reported by itself (a library read the wall clock for the runner)
Severity = Literal["error", "warning", "info"]

#: cause -> (severity, what to use instead). "error": differs from run to run or process to
#: process; "warning": stable across runs on one machine, differs across machines.
CAUSES: dict[str, tuple[Severity, str]] = {
    "wall clock": ("error", "ctx.now()"),
    "monotonic clock": ("error", "ctx.now(), and keep durations out of the result"),
    "performance counter": ("error", "ctx.now(), and keep durations out of the result"),
    "process CPU time": ("error", "nothing: keep CPU times out of the result"),
    "thread CPU time": ("error", "nothing: keep CPU times out of the result"),
    "a system clock": ("error", "ctx.now()"),
    "random module": ("error", "ctx.random"),
    "unseeded random generator": ("error", "ctx.random"),
    "OS randomness": ("error", "ctx.random"),
    "random id (uuid4)": ("error", "ctx.uuid()"),
    "time-based id (uuid1)": ("error", "ctx.uuid()"),
    "random temporary name": ("error", "a fixed name, or ctx.random"),
    "process id": ("error", "a value passed in the input"),
    "thread id": ("error", "a value passed in the input"),
    "object address (id)": ("error", "a key derived from the data"),
    "object address in a repr": ("error", "a repr without the address"),
    "hash randomized per process": ("error", "a stable digest (hashlib) or sorting"),
    "a read under /proc": ("error", "a value passed in the input"),
    "a read under /sys": ("error", "a value passed in the input"),
    "system load": ("error", "a value passed in the input"),
    "network connection": ("error", "ctx.http"),
    "DNS lookup": ("error", "ctx.http"),
    "an environment variable": ("warning", "a value passed in the input"),
    "host name": ("warning", "a value passed in the input"),
    "host details": ("warning", "a value passed in the input"),
    "MAC address": ("warning", "a value passed in the input"),
    "CPU count": ("warning", "a value passed in the input"),
    "working directory": ("warning", "a path passed in the input"),
    "an external program": ("warning", "its output recorded as an input, or ctx.http"),
    "user account": ("warning", "a value passed in the input"),
    "directory listing order": ("warning", "sorted(...)"),
    "the wall clock, read inside a library": ("info", "ctx.now(), passed to the library"),
}


#: Causes whose values change on every call or in every process (timings, addresses, scratch
#: names, thread and process ids). When every run of a case still gives the same result, such
#: values evidently never reached it (a timed log line, an identity map, a scratch directory):
#: the golden check then reports the call as a warning, not an error. The clock, randomness,
#: ids and reads of the machine stay errors: a date or a coin flip agrees by chance.
INERT_WHEN_RUNS_AGREE = frozenset({
    "monotonic clock", "performance counter", "process CPU time", "thread CPU time",
    "object address (id)", "object address in a repr", "random temporary name", "thread id",
    "process id",
})  # fmt: skip


@dataclass(frozen=True)
class UncontrolledCall:
    #: e.g. "os.getpid", "time.monotonic_ns", "open('/proc/uptime')", "os.environ['HOME']", "id"
    call: str
    file: str
    line: int
    cause: str = ""  #: plain words: "process id", "monotonic clock", "a read under /proc", ...
    severity: Severity = "error"
    #: repr()s (at most ~200 characters each) of the first values this site returned in this
    #: run, in call order; () when the value could not be captured.
    values: tuple[str, ...] = ()

    @property
    def hint(self) -> str:
        return CAUSES.get(self.cause, ("error", "RunContext"))[1]

    def render(self) -> str:
        call = self.call if re.search(r"[(\[ ]", self.call) else f"{self.call}()"
        return f"{call} at {self.file}:{self.line} — {self.cause} (use {self.hint})"


@dataclass(frozen=True)
class GlobalChange:
    module: str
    name: str
    before: str  #: short repr, or "<unset>"
    after: str
    file: str
    line: int | None  #: where the module assigns or mutates it (in a function), else defines it


Label = Callable[[tuple[Any, ...], dict[str, Any]], "str | None"]
Value = Callable[[tuple[Any, ...], dict[str, Any], Any], Any]
ANY = frozenset({"*"})  #: `through`: any library frame


@dataclass(frozen=True)
class Source:
    """One uncontrolled source. `targets`: where it lives, "module:attr" or "module:Class.attr".
    `label(args, kwargs)`: the call's name, or None when this call is not uncontrolled (default:
    `call`). `keep(result)`: whether the call counts given its result. `value(args, kwargs,
    result)`: what to show as its value (`_NO_VALUE`: nothing). `through`: library modules whose
    frames may stand between the user's frame and the call (ANY: any library frame)."""

    call: str
    cause: str
    targets: tuple[str, ...]
    label: Label | None = None
    keep: Callable[[Any], bool] | None = None
    value: Value | None = None
    through: frozenset[str] | None = None
    order: bool = False  #: the result's order is the issue: not reported under sorted(), set()...
    cause_by: tuple[tuple[str, str], ...] = ()  #: (text in the label, cause) overriding `cause`

    def cause_of(self, label: str) -> str:
        for text, cause in self.cause_by:
            if text in label:
                return cause
        return self.cause


_NO_VALUE: Any = object()


def _result(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> Any:
    return result


def _no_value(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> Any:
    return _NO_VALUE


def _first_arg(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> Any:
    return args[0] if args else _NO_VALUE


def _under(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    target = args[0] if args else kwargs.get("file", kwargs.get("path"))
    if target is None or isinstance(target, int):
        return None
    path = os.fspath(target)
    text = path.decode(errors="replace") if isinstance(path, bytes) else path
    # as the kernel reads it: `//proc/uptime`, `/./proc/..`, `proc/x` from `/` are /proc too
    norm = "/" + os.path.abspath(text).lstrip("/")
    return text if norm.startswith(("/proc/", "/sys/")) or norm in ("/proc", "/sys") else None


def _program_label(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """`subprocess.run(['date', '+%F'])` -> "subprocess('date')" (Popen(self, args, ...))."""
    command = args[1] if len(args) > 1 else kwargs.get("args")
    if isinstance(command, str | bytes | os.PathLike):
        head = os.fsdecode(command).split()[:1]
    else:
        head = [os.fsdecode(command[0])] if command else []
    return f"subprocess({head[0]!r})" if head else "subprocess"


def _file_label(name: str, self_is_path: bool = False) -> Label:
    def label(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        path = _under(args[:1] if self_is_path else args, {} if self_is_path else kwargs)
        return None if path is None else f"{name}({path!r})"

    return label


_SYS = (("'/sys", "a read under /sys"),)


def _proc_sources() -> list[Source]:
    cause = "a read under /proc"
    return [
        Source("open", cause, ("builtins:open", "io:open"), _file_label("open"),
               value=_no_value, through=ANY, cause_by=_SYS),
        Source("os.open", cause, ("os:open",), _file_label("os.open"), value=_no_value,
               through=ANY, cause_by=_SYS),
        Source("Path.read_text", cause, ("pathlib:Path.read_text",),
               _file_label("Path.read_text", True), through=ANY, cause_by=_SYS),
        Source("Path.read_bytes", cause, ("pathlib:Path.read_bytes",),
               _file_label("Path.read_bytes", True), through=ANY, cause_by=_SYS),
    ]  # fmt: skip


def _secret_name(key: Any) -> bool:
    name = re.sub(r"[^a-z0-9]", "", str(key).lower())
    return name in DEFAULT_SECRET_KEYS or name.endswith(DEFAULT_SECRET_SUFFIXES)


def _env_label(form: str, key_at: int = 1) -> Label:
    def label(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        if key_at and (not args or args[0] not in (os.environ, getattr(os, "environb", None))):
            return None  # another _Environ (or a subclass used elsewhere)
        name = "os.environb" if key_at and args[0] is not os.environ else "os.environ"
        key = args[key_at] if len(args) > key_at else kwargs.get("key")
        return form.format(env=name, key=key)

    return label


def _env_value(key_at: int = 1) -> Value:
    def value(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> Any:
        key = args[key_at] if len(args) > key_at else kwargs.get("key")
        return "[redacted]" if result is not None and _secret_name(key) else result

    return value


def _clock_now(name: str, arity: int) -> Label:
    def label(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        return name if len(args) < arity or args[arity - 1] is None else None

    return label


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")


def _hash_varies(obj: Any, depth: int = 0) -> bool:
    if isinstance(obj, str | bytes):
        return True
    if isinstance(obj, tuple | frozenset) and depth < 3:
        return any(_hash_varies(x, depth + 1) for x in obj)
    default: Any = object.__hash__
    return type(obj).__hash__ is default


def _hash_label(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    return "hash" if args and _hash_varies(args[0]) else None


def _seed_label(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    unseeded = (len(args) < 2 or args[1] is None) and kwargs.get("a") is None
    return "random.Random()" if unseeded and args and args[0] is not random_inst() else None


def random_inst() -> Any:
    return getattr(sys.modules.get("random"), "_inst", None)


def _random_sources() -> list[Source]:
    import random

    names = sorted(
        n for n in getattr(random, "__all__", ())
        if getattr(getattr(random, n, None), "__self__", None) is random._inst
    )  # fmt: skip
    return [
        Source(f"random.{n}", "random module", (f"random:{n}",),
               value=_first_arg if n == "shuffle" else None)
        for n in names
    ]  # fmt: skip


_LISTING = frozenset({"os", "pathlib", "glob", "fnmatch", "shutil"})
#: modules whose reads of the environment or the working directory are the caller's
#: (`os.path.expanduser('~')`, `Path.home()`, `os.path.abspath('x')`, `Path.cwd()`)
_ENV_THROUGH = frozenset({"os", "_collections_abc", "posixpath", "ntpath", "pathlib"})

#: The uncontrolled world. Add a line to watch one more source.
SOURCES: tuple[Source, ...] = (
    # clocks
    Source("time.time", "wall clock", ("time:time",)),
    Source("time.time_ns", "wall clock", ("time:time_ns",)),
    Source("time.localtime", "wall clock", ("time:localtime",), _clock_now("time.localtime", 1)),
    Source("time.gmtime", "wall clock", ("time:gmtime",), _clock_now("time.gmtime", 1)),
    Source("time.ctime", "wall clock", ("time:ctime",), _clock_now("time.ctime", 1)),
    Source("time.asctime", "wall clock", ("time:asctime",), _clock_now("time.asctime", 1)),
    Source("time.strftime", "wall clock", ("time:strftime",), _clock_now("time.strftime", 2)),
    Source("datetime.now", "wall clock", ("datetime:datetime.now",)),
    Source("datetime.utcnow", "wall clock", ("datetime:datetime.utcnow",)),
    Source("datetime.today", "wall clock", ("datetime:datetime.today",)),
    Source("date.today", "wall clock", ("datetime:date.today",)),
    Source("time.monotonic", "monotonic clock", ("time:monotonic",)),
    Source("time.monotonic_ns", "monotonic clock", ("time:monotonic_ns",)),
    Source("time.perf_counter", "performance counter", ("time:perf_counter",)),
    Source("time.perf_counter_ns", "performance counter", ("time:perf_counter_ns",)),
    Source("time.process_time", "process CPU time", ("time:process_time",)),
    Source("time.process_time_ns", "process CPU time", ("time:process_time_ns",)),
    Source("os.times", "process CPU time", ("os:times",)),
    Source("resource.getrusage", "process CPU time", ("resource:getrusage",)),
    Source("time.thread_time", "thread CPU time", ("time:thread_time",)),
    Source("time.thread_time_ns", "thread CPU time", ("time:thread_time_ns",)),
    Source("time.clock_gettime", "a system clock", ("time:clock_gettime",)),
    Source("time.clock_gettime_ns", "a system clock", ("time:clock_gettime_ns",)),
    # randomness and ids
    *_random_sources(),
    Source("random.Random()", "unseeded random generator", ("random:Random.seed",), _seed_label,
           value=_no_value, through=frozenset({"random"})),
    Source("random.SystemRandom", "OS randomness",
           ("random:SystemRandom.random", "random:SystemRandom.getrandbits",
            "random:SystemRandom.randbytes"), through=frozenset({"random"})),
    Source("os.urandom", "OS randomness", ("os:urandom",)),
    *(Source(f"secrets.{n}", "OS randomness", (f"secrets:{n}",))
      for n in ("token_bytes", "token_hex", "token_urlsafe", "choice", "randbelow", "randbits")),
    Source("uuid.uuid4", "random id (uuid4)", ("uuid:uuid4",)),
    Source("uuid.uuid1", "time-based id (uuid1)", ("uuid:uuid1",)),
    Source("uuid.getnode", "MAC address", ("uuid:getnode",)),
    *(Source(f"tempfile.{n}", "random temporary name", (f"tempfile:{n}",),
             value=_result if n in ("mkstemp", "mkdtemp", "mktemp") else _no_value,
             through=frozenset({"tempfile"}))
      for n in ("mkstemp", "mkdtemp", "mktemp", "NamedTemporaryFile", "TemporaryFile")),
    # the process, threads, objects
    Source("os.getpid", "process id", ("os:getpid",)),
    Source("os.getppid", "process id", ("os:getppid",)),
    Source("threading.get_ident", "thread id", ("threading:get_ident", "_thread:get_ident")),
    Source("threading.get_native_id", "thread id",
           ("threading:get_native_id", "_thread:get_native_id")),
    Source("id", "object address (id)", ("builtins:id",)),
    Source("repr", "object address in a repr", ("builtins:repr",),
           keep=lambda r: isinstance(r, str) and _ADDRESS.search(r) is not None),
    Source("hash", "hash randomized per process", ("builtins:hash",), _hash_label),
    Source("os.getloadavg", "system load", ("os:getloadavg",)),
    # files under /proc and /sys
    *_proc_sources(),
    # the environment
    Source("os.environ[]", "an environment variable", ("os:_Environ.__getitem__",),
           _env_label("{env}[{key!r}]"), value=_env_value(),
           through=_ENV_THROUGH),
    Source("os.environ.get", "an environment variable", ("os:_Environ.get",),
           _env_label("{env}.get({key!r})"), value=_env_value(),
           through=_ENV_THROUGH),
    Source("in os.environ", "an environment variable", ("os:_Environ.__contains__",),
           _env_label("{key!r} in {env}"), through=_ENV_THROUGH),
    Source("os.environ (iteration)", "an environment variable", ("os:_Environ.__iter__",),
           _env_label("{env} (iteration)"), value=_no_value,
           through=_ENV_THROUGH),
    Source("os.environ.copy", "an environment variable", ("os:_Environ.copy",),
           _env_label("{env}.copy()"), value=_no_value),
    Source("os.getenv", "an environment variable", ("os:getenv",),
           _env_label("os.getenv({key!r})", 0), value=_env_value(0)),
    # the machine
    Source("socket.gethostname", "host name", ("socket:gethostname",)),
    Source("socket.getfqdn", "host name", ("socket:getfqdn",)),
    Source("platform.node", "host name", ("platform:node",)),
    Source("os.uname", "host details", ("os:uname",)),
    *(Source(f"platform.{n}", "host details", (f"platform:{n}",))
      for n in ("platform", "uname", "machine", "processor", "release", "version", "system")),
    Source("os.cpu_count", "CPU count", ("os:cpu_count",)),
    Source("os.sched_getaffinity", "CPU count", ("os:sched_getaffinity",)),
    Source("os.getcwd", "working directory", ("os:getcwd",), through=_ENV_THROUGH),
    Source("os.getuid", "user account", ("os:getuid",)),
    Source("os.getlogin", "user account", ("os:getlogin",)),
    Source("getpass.getuser", "user account", ("getpass:getuser",)),
    # directory listings (the order is the file system's)
    Source("os.listdir", "directory listing order", ("os:listdir",), through=_LISTING,
           order=True),
    Source("os.scandir", "directory listing order", ("os:scandir",), value=_no_value,
           through=_LISTING, order=True),
    Source("glob.glob", "directory listing order", ("glob:glob",), through=_LISTING,
           order=True),
    # the network
    Source("socket.connect", "network connection",
           ("socket:socket.connect", "socket:socket.connect_ex"), value=_no_value, through=ANY),
    Source("subprocess", "an external program", ("subprocess:Popen.__init__",),
           _program_label, value=_no_value, through=frozenset({"subprocess"})),
    Source("socket.getaddrinfo", "DNS lookup",
           ("socket:getaddrinfo", "socket:gethostbyname", "socket:gethostbyname_ex"),
           value=_no_value, through=ANY),
)  # fmt: skip


# --------------------------------------------------------------------------- frames


def _roots() -> tuple[str, tuple[str, ...]]:
    paths = sysconfig.get_paths()
    libs = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    libs |= {os.path.dirname(os.__file__)}
    jobforge = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return jobforge + os.sep, tuple(sorted(os.path.join(r, "") for r in libs if r))


_JOBFORGE, _LIBS = _roots()
_USER, _LIB, _OURS = 0, 1, 2
_KINDS: dict[str, int] = {}


def _kind(filename: str) -> int:
    kind = _KINDS.get(filename)
    if kind is None:
        if filename.startswith("<"):
            kind = _LIB
        elif filename.startswith(_JOBFORGE):
            kind = _OURS
        elif filename.startswith(_LIBS):
            kind = _LIB
        else:
            kind = _USER
        _KINDS[filename] = kind
    return kind


def _site(frame: types.FrameType | None, through: frozenset[str] | None) -> types.FrameType | None:
    """The user frame a call made by `frame` is blamed on, or None."""
    if frame is None:
        return None
    kind = _kind(frame.f_code.co_filename)
    if kind == _USER:
        return frame
    if through is None or kind == _OURS:
        return None
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if kind == _USER:
            return frame
        if kind == _OURS or (through is not ANY and frame.f_globals.get("__name__") not in through):
            return None
        frame = frame.f_back
    return None


_UNORDERED = frozenset({"sorted", "set", "frozenset", "len", "sum", "min", "max", "any", "all",
                        "Counter"})  # fmt: skip
_COMPREHENSIONS = frozenset({"<genexpr>", "<listcomp>", "<setcomp>", "<dictcomp>"})
_Spans = dict[tuple[int, int, int, int], ast.AST]
_PARSED: dict[str, tuple[_Spans, dict[ast.AST, ast.AST]] | None] = {}


@functools.cache
def _tree(filename: str) -> ast.Module | None:
    """A source file's syntax tree, parsed once per process (None when it cannot be read)."""
    try:
        with open(filename, encoding="utf-8") as f:
            return ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return None


def _parsed(filename: str) -> tuple[_Spans, dict[ast.AST, ast.AST]] | None:
    if filename not in _PARSED:
        tree = _tree(filename)
        if tree is None:
            _PARSED[filename] = None
            return None
        spans: _Spans = {}
        parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
            if isinstance(node, ast.Call) and node.end_lineno is not None:
                key = (node.lineno, node.end_lineno, node.col_offset, node.end_col_offset or 0)
                spans[key] = node
        _PARSED[filename] = (spans, parents)
    return _PARSED[filename]


def _unordered_use(frame: types.FrameType) -> bool:
    """Whether the call `frame` is making is (or sits inside) sorted(...), set(...), len(...)..."""
    frames = [frame]
    if frame.f_code.co_name in _COMPREHENSIONS and frame.f_back is not None:
        frames.append(frame.f_back)
    for f in frames:
        parsed = _parsed(f.f_code.co_filename)
        if parsed is None:
            continue
        positions = list(f.f_code.co_positions())
        index = f.f_lasti // 2
        if index >= len(positions):
            continue
        line, end, col, end_col = positions[index]
        node = parsed[0].get((line or 0, end or 0, col or 0, end_col or 0))
        while node is not None and not isinstance(node, ast.stmt):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", None)
                if name in _UNORDERED:
                    return True
            node = parsed[1].get(node)
    return False


# --------------------------------------------------------------------------- watches

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 190
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 20
_REPR.maxlevel = 3
_MAX_VALUES = 16
_original_repr = builtins.repr
_id = builtins.id
_object_repr: Any = object.__repr__


def _short(value: Any, limit: int = 200) -> str:
    try:
        text = (
            _REPR.repr(value)
            if isinstance(value, list | tuple | dict | set | frozenset)
            else _original_repr(value)
        )
    except Exception as exc:  # a broken __repr__ must not break the runner
        text = f"<{type(value).__name__}: repr failed: {type(exc).__name__}>"
    return _cap(text, limit)


def _cap(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Site:
    __slots__ = ("call", "cause", "file", "line", "values")

    def __init__(self, call: str, cause: str, file: str, line: int) -> None:
        self.call, self.cause, self.file, self.line = call, cause, file, line
        self.values: list[str] = []


class Watch:
    """Collects the uncontrolled calls made in the contexts (threads, tasks) it is installed in."""

    def __init__(self, clock_shift_s: float = 0.0) -> None:
        """`clock_shift_s`: what the wall clock (`time.time`, `time.time_ns`) is moved by for
        the watched code, whoever calls it (a library, `date.today()`, a default factory) but
        jobforge: runs of one case are watched with different shifts, so a date or an hour
        taken from the clock anywhere differs between them instead of agreeing by chance."""
        self._lock = threading.Lock()
        self._sites: dict[tuple[str, str, int], _Site] = {}
        self.globals_changed: list[GlobalChange] = []
        self.clock_shift_s = clock_shift_s

    @property
    def calls(self) -> list[UncontrolledCall]:
        """One per (call, file, line), in order of first sight, with the values seen there."""
        with self._lock:
            sites = list(self._sites.values())
            return [
                UncontrolledCall(s.call, s.file, s.line, s.cause,
                                 CAUSES.get(s.cause, ("error", ""))[0], tuple(s.values))
                for s in sites
            ]  # fmt: skip

    def _add(self, call: str, cause: str, frame: types.FrameType, value: Any) -> None:
        key = (call, frame.f_code.co_filename, frame.f_lineno or 0)
        with self._lock:
            site = self._sites.get(key)
            if site is None:
                site = self._sites[key] = _Site(call, cause, key[1], key[2])
            full = len(site.values) >= _MAX_VALUES
        if value is not _NO_VALUE and not full:
            text = _short(value)
            with self._lock:
                if len(site.values) < _MAX_VALUES:
                    site.values.append(text)


_CURRENT: contextvars.ContextVar[Watch | None] = contextvars.ContextVar(
    "jobforge.strict.watch", default=None
)


def _watched(
    watch: Watch, source: Source, original: Callable[..., Any], frame: types.FrameType,
    label: str, args: tuple[Any, ...], kwargs: dict[str, Any],
) -> Any:  # fmt: skip
    if source.order and _unordered_use(frame):
        return original(*args, **kwargs)
    token = _CURRENT.set(None)  # what the original calls is its business, not the runner's
    try:
        result = original(*args, **kwargs)
        shift = _SHIFTS.get(source.call)
        if shift is not None and watch.clock_shift_s:
            result = shift(result, watch.clock_shift_s)
    except BaseException:
        if source.keep is None:
            watch._add(label, source.cause_of(label), frame, _NO_VALUE)
        raise
    finally:
        _CURRENT.reset(token)
    if source.keep is None or source.keep(result):
        pick = source.value or _result
        watch._add(label, source.cause_of(label), frame, pick(args, kwargs, result))
    return result


#: The wall clock's sources, and how a shift in seconds applies to what they return.
_SHIFTS: dict[str, Callable[[Any, float], Any]] = {
    "time.time": lambda value, shift: value + shift,
    "time.time_ns": lambda value, shift: value + int(shift * 1_000_000_000),
}


def _library_read(watch: Watch, call: str, frame: types.FrameType | None, value: Any) -> None:
    """Evidence (severity "info") of the wall clock read by a library on the runner's behalf,
    at the runner's line that called into the library: explains a date that differs between
    runs, without blaming every log line on the runner."""
    via = frame.f_globals.get("__name__", "?") if frame is not None else "?"
    while frame is not None and _kind(frame.f_code.co_filename) == _LIB:
        frame = frame.f_back
    if frame is not None and _kind(frame.f_code.co_filename) == _USER:
        watch._add(f"{call}() inside {via}", "the wall clock, read inside a library", frame,
                   value)  # fmt: skip


def _ours(frame: types.FrameType | None) -> bool:
    """Whether the first frame that is not a library's is jobforge's (its timings are real)."""
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if kind != _LIB:
            return kind == _OURS
        frame = frame.f_back
    return True


def _make_wrapper(source: Source, original: Callable[..., Any]) -> Callable[..., Any]:
    current, getframe, site, label_of = _CURRENT.get, sys._getframe, _site, source.label
    call, through = source.call, source.through
    shift = _SHIFTS.get(call)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        watch = current()
        if watch is None:
            return original(*args, **kwargs)
        label: str | None = call
        if label_of is not None:
            try:
                label = label_of(args, kwargs)
            except Exception:  # an odd argument: not a call that counts
                label = None
        if label is None:
            return original(*args, **kwargs)
        frame = site(getframe(1), through)
        if frame is None:
            if shift is None or _ours(getframe(1)):
                return original(*args, **kwargs)
            value = original(*args, **kwargs)  # a library reads the clock for the runner
            if watch.clock_shift_s:
                value = shift(value, watch.clock_shift_s)
            _library_read(watch, call, getframe(1), value)
            return value
        return _watched(watch, source, original, frame, label, args, kwargs)

    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        with suppress(AttributeError, TypeError):
            setattr(wrapper, attr, getattr(original, attr))
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    return wrapper


# --------------------------------------------------------------------------- installation

_MISSING: Any = object()


@dataclass
class _Target:
    source: Source
    module: str
    path: tuple[str, ...]  #: ("monotonic_ns",) or ("Path", "read_text")


_TARGETS: list[_Target] = [
    _Target(s, t.partition(":")[0], tuple(t.partition(":")[2].split(".")))
    for s in SOURCES
    for t in s.targets
]
if len({(t.module, t.path) for t in _TARGETS}) != len(_TARGETS):
    raise ValueError("strict.SOURCES: a target is named twice (one source per target)")
_LOCK = threading.Lock()
_state: dict[str, Any] = {"installs": 0}
_aliases: list[tuple[dict[str, Any], str, Any, Any]] = []  #: (globals, name, original, wrapper)
_wrappers: dict[tuple[int, int], tuple[Any, Any]] = {}  #: (source, _id(original)) -> (orig, wrap)
_by_func: dict[Any, Source] = {}  #: C originals -> source (profile fallback)
_by_code: dict[types.CodeType, tuple[Source, Any]] = {}  #: Python originals -> (source, self)
_originals: dict[int, Any] = {}  #: _id(module-level original) -> wrapper
_profiled: dict[int, list[Any]] = {}  #: thread id -> [watches, previous profile function]
_user_modules: dict[str, Any] = {"count": -1, "modules": []}
_alias_scan: dict[str, tuple[int, list[str]]] = {}
_wrapper_ids: set[int] = set()
_get_ident = threading.get_ident


def _module(name: str) -> Any:
    module = sys.modules.get(name)
    if module is None:
        try:
            module = importlib.import_module(name)
        except ImportError:
            return None
    return module


def _wrapper_for(source: Source, original: Any, method: bool) -> Any:
    key = (_id(source), _id(original))
    cached = _wrappers.get(key)
    if cached is not None and cached[0] is original:
        return cached[1]
    fn = _make_wrapper(source, original)
    wrapper = fn if method else staticmethod(fn)  # a staticmethod never binds as a method
    _wrappers[key] = (original, wrapper)
    _wrapper_ids.add(_id(wrapper))
    return wrapper


def _fallback(source: Source, original: Any) -> None:
    if source.label is not None or source.keep is not None:
        return  # whether the call counts depends on its arguments: only the wrapper can tell
    code = getattr(original, "__code__", None) or getattr(
        getattr(original, "__func__", None), "__code__", None
    )
    if isinstance(code, types.CodeType):
        _by_code[code] = (source, getattr(original, "__self__", None))
    else:
        with suppress(TypeError):  # unhashable: cannot be looked up
            _by_func[original] = source


class _Patch:
    """One target, resolved once: where it lives, its original and the wrapper put there."""

    __slots__ = (
        "attr",
        "cached",
        "had",
        "method",
        "original",
        "owner",
        "source",
        "space",
        "wrapper",
    )

    def __init__(self, source: Source, owner: Any, attr: str) -> None:
        self.source, self.owner, self.attr = source, owner, attr
        self.method = isinstance(owner, type)
        self.space: dict[str, Any] | None = None if self.method else vars(owner)
        self.original: Any = _MISSING
        self.cached: Any = None  #: the wrapper of `original`
        self.wrapper: Any = None  #: the wrapper in place, while installed
        self.had: Any = _MISSING


_plan: list[_Patch] | None = None


def _build_plan() -> list[_Patch]:
    plan = []
    for target in _TARGETS:
        owner: Any = _module(target.module)
        for part in target.path[:-1]:
            owner = getattr(owner, part, None)
        attr = target.path[-1]
        original = getattr(owner, attr, _MISSING) if owner is not None else _MISSING
        if original is _MISSING:
            continue
        if isinstance(owner, type) and not owner.__flags__ & (1 << 9):
            _fallback(target.source, original)  # a C type's method cannot be replaced
            continue
        plan.append(_Patch(target.source, owner, attr))
    return plan


def _patch_all() -> None:
    global _plan
    if _plan is None:
        _plan = _build_plan()
    originals = _originals
    for p in _plan:
        if p.space is not None:  # a module: its dict directly
            current = p.space.get(p.attr, _MISSING)
            p.had = current
        else:
            p.had = p.owner.__dict__.get(p.attr, _MISSING)
            current = getattr(p.owner, p.attr, _MISSING)
        if current is _MISSING or _id(current) in _wrapper_ids:
            p.wrapper = None
            continue
        if current is not p.original:  # first time, or replaced since (a test's monkeypatch)
            p.original = current
            p.cached = _wrapper_for(p.source, current, p.method)
            if not p.method:
                _fallback(p.source, current)
        p.wrapper = p.cached
        if p.space is not None:
            p.space[p.attr] = p.wrapper
            originals[_id(current)] = (current, p.wrapper)
        else:
            setattr(p.owner, p.attr, p.wrapper)


def _unpatch_all() -> None:
    for p in reversed(_plan or ()):
        wrapper, p.wrapper = p.wrapper, None
        if wrapper is None:
            continue
        if p.space is not None:
            if p.space.get(p.attr) is wrapper:  # else replaced meanwhile: theirs stays
                p.space[p.attr] = p.had
        elif p.owner.__dict__.get(p.attr) is wrapper:
            if p.had is _MISSING:
                delattr(p.owner, p.attr)
            else:
                setattr(p.owner, p.attr, p.had)
    _originals.clear()


def _scan_user_modules() -> list[types.ModuleType]:
    modules = sys.modules
    if len(modules) != _user_modules["count"]:
        found = []
        for module in list(modules.values()):
            if not isinstance(module, types.ModuleType):
                continue
            file = module.__dict__.get("__file__")
            if isinstance(file, str) and _kind(os.path.abspath(file)) == _USER:
                found.append(module)
        _user_modules["count"], _user_modules["modules"] = len(modules), found
    return _user_modules["modules"]  # type: ignore[no-any-return]


def _patch_aliases() -> None:
    originals = _originals
    for module in _scan_user_modules():
        names = module.__dict__
        scanned = _alias_scan.get(module.__name__)
        if scanned is None or scanned[0] != len(names):
            found = [
                n for n, v in list(names.items()) if _id(v) in originals or _id(v) in _wrapper_ids
            ]
            scanned = _alias_scan[module.__name__] = (len(names), found)
        for name in scanned[1]:
            value = names.get(name)
            entry = originals.get(_id(value))
            if entry is not None and entry[0] is value:
                names[name] = entry[1]
                _aliases.append((names, name, value, entry[1]))


def _install() -> None:
    with _LOCK:
        _state["installs"] += 1
        if _state["installs"] == 1:
            _patch_all()
        _patch_aliases()  # also for a runner module imported since the first watch began
        tid = _get_ident()
        entry = _profiled.get(tid)
        if entry is None:
            _profiled[tid] = [1, sys.getprofile()]
            if _profiled[tid][1] is None:  # a profiler at work (cProfile) is left alone
                sys.setprofile(_profile)
        else:
            entry[0] += 1


def _uninstall() -> None:
    with _LOCK:
        tid = _get_ident()
        entry = _profiled.get(tid)
        if entry is not None:
            entry[0] -= 1
            if entry[0] == 0:
                del _profiled[tid]
                if sys.getprofile() is _profile:
                    sys.setprofile(None)
        _state["installs"] -= 1
        if _state["installs"]:
            return
        for names, name, value, wrapper in reversed(_aliases):
            if names.get(name) is wrapper:
                names[name] = value
        _aliases.clear()
        _unpatch_all()


_pending: dict[types.FrameType, tuple[Watch, str, str, types.FrameType]] = {}


def _profile(frame: types.FrameType, event: str, arg: Any) -> None:
    """The fallback: sources called through a reference the wrappers did not replace."""
    if event == "c_call":
        source = _by_func.get(arg)
        if source is None:
            return
        watch = _CURRENT.get()
        site = None if watch is None else _site(frame, source.through)
        if watch is not None and site is not None:
            watch._add(source.call, source.cause, site, _NO_VALUE)
    elif event == "call":
        found = _by_code.get(frame.f_code)
        if found is None:
            return
        source, owner = found
        watch = _CURRENT.get()
        site = None if watch is None else _site(frame.f_back, source.through)
        if watch is None or site is None:
            return
        if owner is not None and frame.f_locals.get("self") is not owner:
            return  # the same method, on another instance (ctx.random is a random.Random too)
        if source.value is None:
            _pending[frame] = (watch, source.call, source.cause, site)
        else:
            watch._add(source.call, source.cause, site, _NO_VALUE)
    elif event == "return" and _pending:
        done = _pending.pop(frame, None)
        if done is not None:
            done[0]._add(done[1], done[2], done[3], arg)


# --------------------------------------------------------------------------- module globals

_SKIP = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
         staticmethod, classmethod, functools.partial)  # fmt: skip
_CONTAINERS = (list, tuple, dict, set, frozenset)
_Snapshot = dict[tuple[str, str], tuple[str, str]]


def _fingerprint(value: Any) -> tuple[str, str]:
    """(what is compared, what is shown): len and a capped repr for containers; the attributes
    of a plain object (whose repr is its address)."""
    try:
        if isinstance(value, _CONTAINERS) or (
            hasattr(value, "__len__") and hasattr(value, "__iter__") and not isinstance(value, str)
        ):
            short = _cap(_REPR.repr(value))
            return f"{len(value)}:{short}", short
        if type(value).__repr__ is _object_repr and hasattr(value, "__dict__"):
            short = _cap(f"{type(value).__name__}({_REPR.repr(vars(value))})")
            return short, short
    except Exception:
        pass
    short = _short(value)
    return short, short


def _snapshot(modules: Sequence[str]) -> _Snapshot:
    out: _Snapshot = {}
    for name in modules:
        module = sys.modules.get(name)
        if module is None:
            continue
        for key, value in list(vars(module).items()):
            if (key.startswith("__") and key.endswith("__")) or isinstance(value, _SKIP):
                continue
            out[(name, key)] = _fingerprint(value)
    return out


_MUTATORS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "pop",
                       "popitem", "remove", "discard", "clear", "appendleft", "extendleft",
                       "sort", "reverse", "__setitem__"})  # fmt: skip
_LINES: dict[str, dict[str, int]] = {}


def _assigned_lines(filename: str) -> dict[str, int]:
    """Global name -> the first line where a function assigns it (`global NAME`) or mutates it
    (`NAME[k] = v`, `NAME.append(...)`), else where the module defines it."""
    if filename in _LINES:
        return _LINES[filename]
    lines: dict[str, int] = {}
    tree = _tree(filename)
    if tree is None:
        _LINES[filename] = lines
        return lines

    def note(name: str, line: int) -> None:
        lines[name] = min(line, lines.get(name, line))

    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        declared = {n for g in ast.walk(fn) if isinstance(g, ast.Global) for n in g.names}
        local = {a.arg for a in (*fn.args.args, *fn.args.kwonlyargs, *fn.args.posonlyargs)}
        for node in ast.walk(fn):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                if node.id in declared:
                    note(node.id, node.lineno)
                else:
                    local.add(node.id)
        for node in ast.walk(fn):
            target: ast.AST | None = None
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
                target = node.value
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in _MUTATORS):  # fmt: skip
                target = node.func.value
            if isinstance(target, ast.Name) and target.id not in local:
                note(target.id, target.lineno)
    for stmt in tree.body:
        targets: Iterable[ast.expr] = ()
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
            targets = (stmt.target,)
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    lines.setdefault(n.id, stmt.lineno)
    _LINES[filename] = lines
    return lines


def _changes(before: _Snapshot, after: _Snapshot) -> list[GlobalChange]:
    out = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        if was is not None and now is not None and was[0] == now[0]:
            continue
        module = sys.modules.get(key[0])
        file = getattr(module, "__file__", None) or ""
        line = _assigned_lines(file).get(key[1]) if file else None
        out.append(GlobalChange(key[0], key[1], "<unset>" if was is None else was[1],
                                "<unset>" if now is None else now[1], file, line))  # fmt: skip
    return out


@contextmanager
def watching(watch: Watch, modules: Sequence[str] = ()) -> Iterator[Watch]:
    """Watch the block (its thread or asyncio task, and what they hand their context to) for
    uncontrolled calls; with `modules`, also record which of their globals the block changed."""
    before = _snapshot(modules) if modules else None
    _install()
    token = _CURRENT.set(watch)
    try:
        yield watch
    finally:
        try:
            _CURRENT.reset(token)
        except ValueError:  # exited in another context than it was entered in
            _CURRENT.set(None)
        _uninstall()
        if before is not None:
            watch.globals_changed.extend(_changes(before, _snapshot(modules)))
