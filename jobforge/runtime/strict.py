"""Strict mode: while a runner executes, report calls to the uncontrolled sources of time,
randomness, ids and I/O that RunContext replaces, with the file and line in the runner's code.

A profile hook (`sys.setprofile`, per thread) sees every call; a call is reported when it is one
of the watched functions and the frame making it is user code (not jobforge, the standard
library or an installed package), so what a library does internally is not blamed on the
runner. The hook slows execution, so the worker turns it on only for golden and replay runs.
"""

from __future__ import annotations

import os
import random
import sys
import sysconfig
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

_HINTS = {
    "time.time": "ctx.now()", "time.time_ns": "ctx.now()", "datetime.now": "ctx.now()",
    "datetime.utcnow": "ctx.now()", "datetime.today": "ctx.now()", "date.today": "ctx.now()",
    "random": "ctx.random", "uuid.uuid1": "ctx.uuid()", "uuid.uuid4": "ctx.uuid()",
    "os.urandom": "ctx.random", "secrets": "ctx.random", "socket.connect": "ctx.http",
}  # fmt: skip


@dataclass(frozen=True)
class UncontrolledCall:
    call: str  #: e.g. "time.time", "random.randint", "uuid.uuid4"
    file: str
    line: int

    @property
    def hint(self) -> str:
        key = self.call if self.call in _HINTS else self.call.split(".")[0]
        return _HINTS.get(key, "RunContext")

    def render(self) -> str:
        return f"{self.call}() at {self.file}:{self.line} (use {self.hint})"


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    jobforge_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return tuple(sorted(r for r in (*roots, jobforge_root) if r))


_ROOTS = _library_roots()
_C_WATCHED: dict[tuple[str, str], str] = {
    ("time", "time"): "time.time", ("time", "time_ns"): "time.time_ns",
    ("posix", "urandom"): "os.urandom", ("nt", "urandom"): "os.urandom",
}  # fmt: skip
_METHODS = {"now": "datetime.now", "utcnow": "datetime.utcnow", "today": "datetime.today"}
_PY_MODULES = {"uuid": ("uuid1", "uuid4"), "secrets": None}


def _user_frame(frame: types.FrameType | None) -> bool:
    if frame is None:
        return False
    filename = frame.f_code.co_filename
    return not filename.startswith("<") and not filename.startswith(_ROOTS)


class Watch:
    """Collects uncontrolled calls made on the threads it is installed on."""

    def __init__(self) -> None:
        self.calls: list[UncontrolledCall] = []
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str, int]] = set()

    def _add(self, call: str, frame: types.FrameType) -> None:
        key = (call, frame.f_code.co_filename, frame.f_lineno)
        with self._lock:
            if key not in self._seen:
                self._seen.add(key)
                self.calls.append(UncontrolledCall(call, key[1], key[2]))

    def profile(self, frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "c_call":
            if not _user_frame(frame):
                return
            name = self._c_name(arg)
            if name is not None:
                self._add(name, frame)
        elif event == "call":
            caller = frame.f_back
            if not _user_frame(caller):
                return
            name = self._py_name(frame)
            if name is not None and caller is not None:
                self._add(name, caller)

    @staticmethod
    def _c_name(fn: Any) -> str | None:
        module = str(getattr(fn, "__module__", None))
        name = str(getattr(fn, "__name__", ""))
        if (module, name) in _C_WATCHED:
            return _C_WATCHED[(module, name)]
        owner = getattr(fn, "__self__", None)
        if owner is random._inst:
            return f"random.{name}"
        if isinstance(owner, type) and owner.__module__ == "datetime" and name in _METHODS:
            return f"{owner.__name__}.{name}"
        if name == "connect" and type(owner).__module__ in ("socket", "_socket"):
            return "socket.connect"
        return None

    @staticmethod
    def _py_name(frame: types.FrameType) -> str | None:
        code = frame.f_code
        module = frame.f_globals.get("__name__")
        if module == "random" and frame.f_locals.get("self") is random._inst:
            return f"random.{code.co_name}"
        if module == "uuid" and code.co_name in ("uuid1", "uuid4"):
            return f"uuid.{code.co_name}"
        if module == "secrets" and not code.co_name.startswith("_"):
            return f"secrets.{code.co_name}"
        if module == "socket" and code.co_name == "create_connection":
            return "socket.connect"
        return None


@contextmanager
def watching(watch: Watch) -> Iterator[Watch]:
    """Install `watch` on the current thread for the duration of the block."""
    previous: Callable[..., Any] | None = sys.getprofile()
    sys.setprofile(watch.profile)
    try:
        yield watch
    finally:
        sys.setprofile(previous)
