"""Putting the wrappers in place and taking them away: every target of `SOURCES` (and every alias of
one in a user module's globals) is replaced while at least one watch is active and put back when
the last one ends; the profile hook (`sys.setprofile`) is the fallback for a source whose
reference escaped the patching. All of it is process-wide state, guarded by one lock.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import types
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from jobforge.runtime.strict.frames import _USER, _kind, _site
from jobforge.runtime.strict.sources import _NO_VALUE, SOURCES, Source
from jobforge.runtime.strict.watch import _CURRENT, Watch, _id
from jobforge.runtime.strict.wrappers import _make_wrapper

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
