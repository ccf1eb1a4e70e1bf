"""Batches job outcomes into one `finish` round trip: flushed when `batch` are waiting or
`flush_s` after the first one arrived, whichever comes first, with at most `in_flight` batches
being recorded at once (outcomes that arrive meanwhile wait, growing the next batch, so a busy
worker spends fewer round trips and commits per outcome)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from jobforge.queue import AsyncQueueClient, Outcome
from jobforge.queue.models import FinishState

logger = logging.getLogger("jobforge.worker")
_TRIES = 4

#: Told, per job, what the database made of its outcome ('lost' when the lease was gone).
OnFinished = Callable[[Outcome, FinishState], None]


class Completer:
    def __init__(
        self,
        client: AsyncQueueClient,
        worker: str,
        on_finished: OnFinished,
        *,
        batch: int = 200,
        flush_s: float = 0.005,
        in_flight: int = 1,
    ) -> None:
        self._client = client
        self._worker = worker
        self._on_finished = on_finished
        self._batch = batch
        self._flush_s = flush_s
        self._pending: list[Outcome] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._in_flight = in_flight

    @property
    def busy(self) -> bool:
        return bool(self._pending or self._flushes)

    def submit(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        if len(self._pending) >= self._batch:
            self._flush_now()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._flush_s, self._flush_now)

    def _flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending or len(self._flushes) >= self._in_flight:
            return  # a flush that ends flushes what waits
        outcomes, self._pending = self._pending[: self._batch], self._pending[self._batch :]
        task = asyncio.ensure_future(self._finish(outcomes))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _finish(self, outcomes: list[Outcome]) -> None:
        states: list[FinishState] = []
        for attempt in range(1, _TRIES + 1):
            try:
                states = await self._client.finish_each(self._worker, outcomes)
                break
            except Exception:
                # Still unrecorded: the leases expire and the jobs run again (at least once).
                if attempt == _TRIES:
                    logger.error("could not record %d outcomes", len(outcomes), exc_info=True)
                    states = ["lost"] * len(outcomes)
                    break
                logger.warning("recording outcomes failed; retrying", exc_info=True)
                await asyncio.sleep(0.1 * 2**attempt)
        # Recorded (or given up on): no longer busy by the time the worker hears of it, so a
        # drain woken by `on_finished` sees an idle completer.
        task = asyncio.current_task()
        if task is not None:
            self._flushes.discard(task)
        if self._pending:
            self._flush_now()  # what waited behind this flush has waited long enough
        for outcome, state in zip(outcomes, states, strict=True):
            self._on_finished(outcome, state)

    async def close(self) -> None:
        """Flush what waits and wait for every flush in flight."""
        self._flush_now()
        while self._flushes or self._pending:
            await asyncio.gather(*self._flushes, return_exceptions=True)
            self._flush_now()
