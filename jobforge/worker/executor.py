"""Runs one handler call inside the job's task: async handlers are awaited in place, sync ones
run in `ThreadSlots`. Timeouts and cancellations arrive as a cancellation of the job's task; a
sync call it interrupts is abandoned (its slot freed at once, the thread counted until it
returns), since a thread cannot be stopped from outside."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from jobforge.worker.context import JobContext
from jobforge.worker.registry import HandlerSpec
from jobforge.worker.threads import ThreadSlots


class Executor:
    def __init__(self, concurrency: int, on_abandon: Callable[[], None] = lambda: None) -> None:
        self.threads = ThreadSlots(concurrency)
        self._on_abandon = on_abandon

    async def run(self, spec: HandlerSpec, ctx: JobContext, arg: Any) -> Any:
        if spec.is_async:
            return await spec.fn(arg, ctx)
        call = self.threads.submit(spec.fn, arg, ctx)
        try:
            return await call.future
        except asyncio.CancelledError:
            if self.threads.abandon(call):
                self._on_abandon()
            raise

    async def call(self, fn: Any, is_async: bool, *args: Any) -> Any:
        """Run a helper (a compensation hook) the way handlers run, without a timeout."""
        if is_async:
            return await fn(*args)
        return await self.threads.submit(fn, *args).future

    @property
    def abandoned(self) -> int:
        return self.threads.abandoned

    def close(self) -> None:
        self.threads.close()
