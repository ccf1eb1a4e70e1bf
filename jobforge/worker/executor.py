"""Runs one handler call: async handlers on the event loop, sync ones in `ThreadSlots`, each
under its timeout. A sync call that outlives its timeout or a cancellation grace is abandoned:
its slot is freed at once and the thread is counted until it returns."""

from __future__ import annotations

import asyncio
from typing import Any

from jobforge.worker.context import JobContext
from jobforge.worker.registry import HandlerSpec
from jobforge.worker.threads import ThreadSlots


class JobTimedOut(Exception):
    """The handler ran past its timeout."""


class Executor:
    def __init__(self, concurrency: int) -> None:
        self.threads = ThreadSlots(concurrency)

    async def run(self, spec: HandlerSpec, ctx: JobContext, arg: Any) -> Any:
        """The handler's return value; raises what it raised, or `JobTimedOut`."""
        if spec.is_async:
            task = asyncio.ensure_future(spec.fn(arg, ctx))
            return await self._await_async(task, spec.timeout_s, ctx)
        call = self.threads.submit(spec.fn, arg, ctx)
        try:
            return await asyncio.wait_for(asyncio.shield(call.future), spec.timeout_s)
        except TimeoutError:
            ctx.stop("timeout")
            self.threads.abandon(call)
            raise JobTimedOut(f"the handler ran past its timeout of {spec.timeout_s} s") from None
        except asyncio.CancelledError:
            # The worker stopped this job (cancel, lost lease, shutdown): the thread was told
            # through ctx.cancelled; if it does not return, its slot is not held hostage.
            self.threads.abandon(call)
            raise

    @staticmethod
    async def _await_async(
        task: asyncio.Future[Any], timeout_s: float | None, ctx: JobContext
    ) -> Any:
        try:
            return await asyncio.wait_for(task, timeout_s)
        except TimeoutError:
            ctx.stop("timeout")
            raise JobTimedOut(f"the handler ran past its timeout of {timeout_s} s") from None

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
