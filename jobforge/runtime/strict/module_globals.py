"""Which module globals a watched block changed: a snapshot of the named modules' globals before
and after (a fingerprint per value), and for each change the line where a function of the
module assigns or mutates it (read from its syntax tree), reported as `GlobalChange`.
"""

from __future__ import annotations

import ast
import functools
import sys
import types
from collections.abc import Iterable, Sequence
from typing import Any

from jobforge.runtime.strict.causes import GlobalChange
from jobforge.runtime.strict.frames import _tree
from jobforge.runtime.strict.watch import _REPR, _cap, _object_repr, _short

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
