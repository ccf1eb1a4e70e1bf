"""The table of uncontrolled sources strict mode watches (`SOURCES`): one line per source, naming
where it lives, what it is (`cause`, whose severity and hint come from `CAUSES`) and, when
needed, which calls count (`label`) and which value to keep (`value`). Add a line to watch one
more source; the rest of strict mode reads this table and never names a source itself.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobforge.runtime.redact import DEFAULT_SECRET_KEYS, DEFAULT_SECRET_SUFFIXES

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
