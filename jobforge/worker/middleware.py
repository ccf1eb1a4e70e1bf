"""Middleware around a handler's execution: how run recording plugs in without the worker knowing.

A middleware is `async def mw(ctx, call_next) -> result`: it may look at or replace the result,
observe or translate the exception, and must call `call_next(ctx)` at most once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from jobforge.worker.context import JobContext

Next = Callable[[JobContext], Awaitable[Any]]


class Middleware(Protocol):
    def __call__(self, ctx: JobContext, call_next: Next) -> Awaitable[Any]: ...


def chain(middleware: Sequence[Middleware], inner: Next) -> Next:
    """`inner` wrapped by each middleware, the first one outermost."""
    call = inner
    for mw in reversed(middleware):
        call = _bind(mw, call)
    return call


def _bind(mw: Middleware, call_next: Next) -> Next:
    def call(ctx: JobContext) -> Awaitable[Any]:
        return mw(ctx, call_next)

    return call
