"""The workers' periodic prune: finished jobs older than their type's retention (`jobforge
retention`) are deleted in batches, by one worker at a time.

Every worker asks now and then (every `prune_every_s`, at most a minute apart); the database
(`jobforge.prune_pass_v1`, migrations/0012) answers with one batch when it is this worker's turn:
no other worker holds the pass, and the last pass started at least `prune_every_s` ago (or one
is under way and its worker stopped asking). The worker then runs batch after batch, waiting
`prune_throttle` times as long as each took before the next, until the pass is done; a worker
that dies midway leaves the pass to the next one, which goes on from the cursor the database
keeps. A pass that deleted run records then deletes the artifact blobs no run references any
more (`jobforge.queue.blobs`, after their grace). Every ask also forgets the policy-token and
signed-envelope uses that can no longer be presented (`prune_token_uses`). The first ask comes
a minute (or one interval) after the start, so short-lived workers, and the tests' and golden
cases', never prune.
"""

from __future__ import annotations

import asyncio
import time

from jobforge.queue import AsyncQueueClient
from jobforge.queue.models import Pruned
from jobforge.worker import logs
from jobforge.worker.metrics import Metrics

logger = logs.logger

#: The longest a worker waits between two asks, whatever its interval: a pass whose worker died
#: is taken over within about this long after its hold lapses.
MAX_ASK_S = 60.0


async def prune_loop(
    client: AsyncQueueClient,
    *,
    metrics: Metrics,
    worker: str,
    every_s: float,
    batch: int,
    throttle: float,
) -> None:
    while True:
        await asyncio.sleep(min(every_s, MAX_ASK_S))
        total, tokens = Pruned(), 0
        try:
            while True:
                began = time.perf_counter()
                done, more = await client.prune_pass(worker, every_s=every_s, batch=batch)
                total += done
                if done.jobs:
                    metrics.inc("pruned", done.jobs)
                if not more:
                    break
                await asyncio.sleep((time.perf_counter() - began) * throttle)
            if total.runs:  # run records went: blobs only they referenced go too
                total += await _prune_blobs(client, batch=batch, throttle=throttle)
            tokens = await _prune_token_uses(client, batch=batch, throttle=throttle)
        except Exception:
            logger.warning("pruning finished jobs failed", exc_info=True,
                           extra={"worker": worker})  # fmt: skip
        if tokens:
            logger.info("forgot %d expired token and signature uses", tokens,
                        extra={"worker": worker})  # fmt: skip
        if total:
            logger.info(
                "pruned %d finished jobs (%d events, %d attempts, %d results, %d run records, "
                "%d artifact blobs)",
                total.jobs, total.events, total.attempts, total.results, total.runs, total.blobs,
                extra={"worker": worker},
            )  # fmt: skip


async def _prune_token_uses(client: AsyncQueueClient, *, batch: int, throttle: float) -> int:
    """Policy-token and signed-envelope uses that can no longer be presented (migrations/0027),
    batch after batch; at most one cheap index probe when none has expired. Every worker asks:
    concurrent ones skip each other's locked rows."""
    total = 0
    while True:
        began = time.perf_counter()
        went = await client.prune_token_uses(batch=batch)
        total += went
        if went < batch:
            return total
        await asyncio.sleep((time.perf_counter() - began) * throttle)


async def _prune_blobs(client: AsyncQueueClient, *, batch: int, throttle: float) -> Pruned:
    """The blobs no run references any more (past their grace), batch after batch; several
    workers at once only skip each other's locked rows."""
    total, after = Pruned(), None
    while True:
        began = time.perf_counter()
        done, after = await client.prune_blobs(batch=batch, after=after)
        total += Pruned(blobs=done.blobs, blob_bytes=done.bytes)
        if after is None:
            return total
        await asyncio.sleep((time.perf_counter() - began) * throttle)
