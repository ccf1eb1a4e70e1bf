"""Whose call it is: a frame is the runner's (user code), a library's (the standard library or an
installed package) or jobforge's own, and a call is blamed on the nearest user frame only through
the library frames its source allows. Also whether a call sits inside ``sorted(...)``,
``set(...)`` and the like, where a listing's order does not matter (read from the source file).
"""

from __future__ import annotations

import ast
import functools
import os
import sysconfig
import types

from jobforge.runtime.strict.sources import ANY


def _roots() -> tuple[str, tuple[str, ...]]:
    paths = sysconfig.get_paths()
    libs = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    libs |= {os.path.dirname(os.__file__)}
    strict = os.path.dirname(os.path.abspath(__file__))  # jobforge/runtime/strict
    jobforge = os.path.dirname(os.path.dirname(strict))
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
