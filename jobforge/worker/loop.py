"""The worker: claims jobs it has handlers for, runs them concurrently, records their outcomes.

One asyncio loop per worker process, pipelined so that no round trip waits for another: the
fetch loop claims ahead of the free slots (`prefetch` jobs wait, leased and heartbeated, for a
slot) and claims again as soon as slots free up, in the background, while jobs run; each job
runs as a task (async handlers on the loop, sync ones on daemon threads) and ends in an outcome
(`outcomes`) that the completer records in batches on its own pool connection, never waited for
before the next claim. The loop wakes on LISTEN/NOTIFY (`listen`), polling with a capped backoff
when idle; one heartbeat statement per interval renews every lease held, waiting jobs' included,
and brings cancellations and lost leases back to the handlers (`stopping`). Stopping is graceful
(`shutdown`): no new claims, jobs that never started are released, running jobs get a grace
period, then are told to stop and their leases are released without costing an attempt.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from jobforge import errors
from jobforge.queue import AsyncQueueClient, Job, Outcome
from jobforge.queue.models import FinishState, HeartbeatState
from jobforge.queue.retention import DEFAULT_THROTTLE
from jobforge.trust.tokens import TokenKeys
from jobforge.worker import gcpace, logs
from jobforge.worker.admission import Admission, KeyLoader, Policy, admit_now
from jobforge.worker.completer import Completer
from jobforge.worker.context import JobContext, StopReason
from jobforge.worker.deadlines import Deadlines
from jobforge.worker.executor import Executor
from jobforge.worker.gauges import gauge_loop
from jobforge.worker.heartbeat import heartbeat_loop
from jobforge.worker.leases import Held, Holdings, Lease, Running, lease_of
from jobforge.worker.listen import listen_loop
from jobforge.worker.metrics import NO_TYPE, Metrics
from jobforge.worker.middleware import Middleware
from jobforge.worker.outcomes import NO_OUTCOME, admitted, outcome_of
from jobforge.worker.pace import Pace
from jobforge.worker.progress import progress_loop
from jobforge.worker.pruner import prune_loop
from jobforge.worker.reaper import reap_loop
from jobforge.worker.registry import Registry, default_registry
from jobforge.worker.scheduler import DEFAULT_SCHEDULES_EVERY_S, schedule_loop
from jobforge.worker.shutdown import release_stopped, release_waiting, stop_running
from jobforge.worker.stopping import after_stop, drop_waiting, stop_job

logger = logs.logger

#: How long a stop waits for a claim in flight before cutting it short.
_CLAIM_PATIENCE_S = 1.0
#: Connections of the pool a worker opens for itself (given a DSN).
_POOL_SIZE = 7


#: Jobs at once, when not told (the CLI's default too): measured in WorkerConfig below.
DEFAULT_CONCURRENCY = 32
#: How often the fleet prunes, when not told (the CLI's default too): see WorkerConfig.
DEFAULT_PRUNE_EVERY_S = 600.0


@dataclass(frozen=True)
class WorkerConfig:
    name: str | None = None  #: lease holder name; default host:pid:random
    #: jobs run at once. 32: a one-process drain of no-op jobs ran at ~1,900 jobs/s at 8,
    #: ~3,200 at 16, ~4,500 at 32, ~4,900 at 64 and ~6,400 at 100 (2 cores, fsync on); past 32
    #: the gain flattens, while the threads sync handlers may occupy and the jobs held ahead
    #: of other workers keep growing
    concurrency: int = DEFAULT_CONCURRENCY
    types: Sequence[str] | None = None  #: narrow the registry's types
    lease_s: float = 30.0
    heartbeat_s: float | None = None  #: default lease_s / 3
    poll_min_s: float = 0.05  #: idle polling starts here and doubles ...
    poll_max_s: float = 2.0  #: ... up to here (LISTEN/NOTIFY wakes it sooner)
    grace_s: float = 10.0  #: how long running jobs may finish after a stop
    cancel_grace_s: float = 5.0  #: how long a sync handler may take to notice a cancellation
    max_abandoned: int = 8  #: stuck sync threads tolerated before the worker stops taking work
    #: for jobs and handlers that declare none (60 s, the deployment's default; None: none)
    default_timeout_s: float | None = 60.0
    #: verify the signatures of every job, not only of runners declared `signed=True`
    require_signatures: bool = False
    #: the HMAC secrets that verify policy tokens (`TokenKeys.from_env`); None: jobs of a
    #: runner that `requires_scopes` are refused, there being nothing to verify them with
    token_keys: TokenKeys | None = None
    #: clock skew allowed for signatures and tokens
    trust_skew_s: float = 60.0
    #: False only in a harness (golden, replay): recorded inputs run unverified
    verify: bool = True
    #: claims at once: a second claim goes out while the first is answered, so the slots do
    #: not wait out a claim's round trip when short jobs drain them faster than one claim at a
    #: time refills them (one process, 20,000 no-op jobs, 2 cores: ~11,600 jobs/s with 1,
    #: ~12,400 with 2)
    claims_in_flight: int = 2
    completion_batch: int = 200
    completion_flush_s: float = 0.005
    progress_s: float = 0.5  #: progress is written at most this often per job
    listen: bool = True
    exit_when_idle: bool = False  #: stop once nothing is due, running or unrecorded (drain)
    #: stop after this many jobs, once they have finished and their outcomes are recorded (a
    #: process that should be replaced now and then; a golden case's single job)
    max_jobs: int | None = None
    #: jobs claimed ahead of the free slots, waiting (leased, heartbeated) for one, so a slot
    #: that frees up starts its next job at once instead of after a claim's round trip, and
    #: short jobs come in larger claims. None: adaptive (`worker/pace.py`): as many as the
    #: slots, more while jobs finish fast (what 0.1 s of them take, up to 8 per slot and 256);
    #: none for a single slot, whose jobs run one at a time in claim order and would each wait
    #: out the run of the one before
    prefetch: int | None = None
    #: most jobs one claim asks for; None: as many as the free slots and `prefetch` allow
    claim_batch: int | None = None
    #: while metrics are served: read the queue's figures for the gauges this often (None: never)
    queue_gauges_s: float | None = 30.0
    #: how often the fleet prunes finished jobs past their type's retention (`jobforge
    #: retention`), one worker at a time (`pruner`); None: this worker never does. On by
    #: default, so the queue's tables stop growing without anyone remembering a cron job: a
    #: pass that finds nothing costs a few index probes, and an operator who wants every job
    #: kept says so once, in the database (`jobforge retention set --default forever`)
    prune_every_s: float | None = DEFAULT_PRUNE_EVERY_S
    #: finished jobs one prune batch looks at, in one short transaction
    prune_batch: int = 1000
    #: after each batch of a pass, wait this many times as long as the batch took, leaving the
    #: database to claims and finishes (`jobforge prune --throttle`)
    prune_throttle: float = DEFAULT_THROTTLE
    #: how often this worker fires the due schedules (`jobforge schedules`; `scheduler`), in one
    #: short transaction that other workers' passes never wait for; None: this worker never
    #: does (`jobforge worker --no-schedules`). A slot fires within about this long of its time
    schedules_every_s: float | None = DEFAULT_SCHEDULES_EVERY_S
    #: pace the garbage collector to the worker while it runs (`worker/gcpace.py`: what exists
    #: at its start frozen, young collections every 10,000 allocations instead of 700; ~10 us of
    #: ~60 us of Python a no-op job), undone when it stops. False: a process that tunes the
    #: collector itself keeps its settings
    tune_gc: bool = True

    @property
    def ahead(self) -> int:
        """How many jobs may wait for a slot at least (`prefetch`, or the slots' number, which
        a worker raises while its jobs finish fast)."""
        if self.prefetch is not None:
            return self.prefetch
        return self.concurrency if self.concurrency > 1 else 0

    def checked(self) -> WorkerConfig:
        problems = [
            f"{name} must be positive"
            for name in ("concurrency", "lease_s", "poll_min_s", "poll_max_s", "progress_s")
            if not getattr(self, name) > 0
        ]
        if self.heartbeat_s is not None and not 0 < self.heartbeat_s < self.lease_s:
            problems.append("heartbeat_s must be positive and shorter than lease_s")
        if not 0 <= self.trust_skew_s <= 3600:
            problems.append("trust_skew_s must be 0-3600")
        if self.default_timeout_s is not None and not self.default_timeout_s > 0:
            problems.append("default_timeout_s must be positive")
        if self.max_jobs is not None and not self.max_jobs > 0:
            problems.append("max_jobs must be positive")
        if not 1 <= self.claims_in_flight <= 8:
            problems.append("claims_in_flight must be 1-8")
        if self.claim_batch is not None and not self.claim_batch > 0:
            problems.append("claim_batch must be positive")
        if self.queue_gauges_s is not None and not self.queue_gauges_s > 0:
            problems.append("queue_gauges_s must be positive")
        if self.prefetch is not None and self.prefetch < 0:
            problems.append("prefetch must not be negative")
        if self.prune_every_s is not None and not 0 < self.prune_every_s <= 31_536_000:
            problems.append("prune_every_s must be above 0 and at most a year (None: never)")
        if self.schedules_every_s is not None and not 0 < self.schedules_every_s <= 3600:
            problems.append("schedules_every_s must be above 0 and at most an hour (None: never)")
        if not 1 <= self.prune_batch <= 50_000 or not 0 <= self.prune_throttle <= 100:
            problems.append("prune_batch must be 1-50000 and prune_throttle 0-100")
        if self.grace_s < 0 or self.cancel_grace_s < 0 or self.max_abandoned < 0:
            problems.append("grace_s, cancel_grace_s and max_abandoned must not be negative")
        if problems:
            raise errors.ConfigurationError("worker: " + "; ".join(problems))
        return self


@dataclass
class WorkerReport:
    name: str
    counts: dict[str, float]
    stopped_because: str | None = None  #: set when the worker stopped itself (not asked to)
    elapsed_s: float = 0.0


class Worker:
    def __init__(
        self,
        client: AsyncQueueClient | str,
        registry: Registry | None = None,
        config: WorkerConfig | None = None,
        *,
        middleware: Sequence[Middleware] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.config = (config or WorkerConfig()).checked()
        self.registry = registry if registry is not None else default_registry
        self.name = self.config.name or _default_name()
        self.metrics = metrics or Metrics()
        self._client_arg = client
        self._middleware = tuple(middleware)
        self._holdings = Holdings()
        self._deadlines = Deadlines()
        self._pace = Pace()
        self._executor = Executor(
            self.config.concurrency, on_abandon=lambda: self.metrics.inc("abandoned")
        )
        self._stopping = False
        self._grace_over = asyncio.Event()
        self._wake = asyncio.Event()
        self._claimed = 0  #: jobs this worker has claimed (for max_jobs)
        self._stopped_because: str | None = None
        self._client: AsyncQueueClient | None = None
        config = self.config
        self._policy = Policy(require_signatures=config.require_signatures,
                              token_keys=config.token_keys, skew_s=config.trust_skew_s,
                              default_timeout_s=config.default_timeout_s,
                              verify=config.verify)  # fmt: skip
        #: claims in flight: the most jobs each may bring, and whether it began quiet (nothing
        #: in hand, nothing unrecorded: an empty answer then means the queue is drained)
        self._claims: dict[asyncio.Task[list[Job]], tuple[int, bool]] = {}
        self._keys: KeyLoader | None = None  #: signing keys of the jobs starting together
        self._completer: Completer | None = None

    # control
    def stop(self, reason: str | None = None) -> None:
        """Stop claiming and shut down gracefully; a second call cuts the grace period short.
        Call it on the worker's event loop (signal handlers added with `add_signal_handler` are)."""
        if self._stopping:
            self._grace_over.set()
        self._stopping = True
        if reason and self._stopped_because is None:
            self._stopped_because = reason
        for claiming in self._claims:
            if not claiming.done():
                # A claim normally answers in milliseconds; one stuck on a dead connection is
                # not waited out (what it took, if anything, comes back when the leases expire).
                asyncio.get_running_loop().call_later(_CLAIM_PATIENCE_S, claiming.cancel)
        self._wake.set()

    async def run(self) -> WorkerReport:
        types = self.registry.types(self.config.types)
        if not types:
            raise errors.ConfigurationError("the worker has no handlers: register at least one")
        began = time.perf_counter()
        own = isinstance(self._client_arg, str)
        # Claims, outcome batches, heartbeats, progress, reaping and pruning each take a
        # connection of their own when they overlap; a smaller pool would queue a claim behind a
        # finish.
        client = (
            await AsyncQueueClient.connect(self._client_arg, max_size=_POOL_SIZE)
            if isinstance(self._client_arg, str)
            else self._client_arg
        )
        self._client = client
        self._completer = Completer(
            client,
            self.name,
            self._on_finished,
            batch=self.config.completion_batch,
            flush_s=self.config.completion_flush_s,
        )
        config, name = self.config, self.name
        helpers = [
            asyncio.ensure_future(
                heartbeat_loop(
                    client,
                    name,
                    self._leases,
                    self._on_heartbeat,
                    interval_s=config.heartbeat_s or config.lease_s / 3,
                    lease_s=config.lease_s,
                )
            ),
            asyncio.ensure_future(
                progress_loop(client, self._holdings, worker=name, interval_s=config.progress_s)
            ),
            asyncio.ensure_future(
                reap_loop(client, metrics=self.metrics, worker=name, interval_s=config.lease_s)
            ),
        ]
        if self.metrics.serving and config.queue_gauges_s is not None:
            helpers.append(
                asyncio.ensure_future(
                    gauge_loop(
                        client, metrics=self.metrics, worker=name, interval_s=config.queue_gauges_s
                    )
                )
            )
        if config.prune_every_s is not None:
            helpers.append(
                asyncio.ensure_future(
                    prune_loop(
                        client,
                        metrics=self.metrics,
                        worker=name,
                        every_s=config.prune_every_s,
                        batch=config.prune_batch,
                        throttle=config.prune_throttle,
                    )
                )
            )
        if config.schedules_every_s is not None:
            helpers.append(
                asyncio.ensure_future(
                    schedule_loop(
                        client, metrics=self.metrics, worker=name, every_s=config.schedules_every_s
                    )
                )
            )
        if config.listen:
            helpers.append(
                asyncio.ensure_future(
                    listen_loop(client, self._wake, worker=name, retry_s=config.poll_max_s)
                )
            )
        logger.info(
            "worker %s started: types %s, concurrency %d",
            name,
            ", ".join(types),
            config.concurrency,
            extra={"worker": name},
        )
        try:
            with gcpace.paced(config.tune_gc):
                await self._fetch_loop(client, types)
        finally:
            await self._shutdown(client)
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._executor.close()
            if own:
                await client.close()
        if self._stopped_because:
            logger.error(
                "worker %s stopped: %s",
                name,
                self._stopped_because,
                extra={"worker": name},
            )
        return WorkerReport(
            name=name,
            counts=self.metrics.snapshot(),
            stopped_because=self._stopped_because,
            elapsed_s=time.perf_counter() - began,
        )

    # fetching
    async def _fetch_loop(self, client: AsyncQueueClient, types: list[str]) -> None:
        """Start waiting jobs in free slots, keep claims in flight whenever there is room (up to
        `claims_in_flight` at once), and decide when to stop (max_jobs, a drain found idle, too
        many abandoned threads)."""
        config = self.config
        completer = self._completer
        assert completer is not None
        idle = config.poll_min_s
        #: after an empty or failed claim: claim again on a wake-up, or at this time (None:
        #: only on a wake-up); None: claim whenever there is room
        paused: tuple[float | None] | None = None
        drained = False
        while not self._stopping and not drained:
            if self._executor.abandoned > config.max_abandoned:
                self.stop(
                    f"{self._executor.abandoned} handler threads did not stop after a timeout or "
                    f"cancellation (limit {config.max_abandoned}): the worker stops taking work"
                )
                break
            self._start_waiting()
            for claiming in [c for c in self._claims if c.done()]:
                _, quiet = self._claims.pop(claiming)
                try:
                    jobs = claiming.result()
                except asyncio.CancelledError:
                    if self._stopping:
                        return
                    raise
                except errors.JobforgeError:
                    raise
                except Exception:
                    logger.warning(
                        "claim failed; retrying in %.2f s",
                        idle,
                        exc_info=True,
                        extra={"worker": self.name},
                    )
                    paused = (time.monotonic() + idle,)
                    idle = min(idle * 2, config.poll_max_s)
                    continue
                self._claimed += len(jobs)
                self._want_keys(jobs)
                self._hold_all(jobs)
                self._start_waiting()
                if jobs:
                    idle, paused = config.poll_min_s, None
                elif config.exit_when_idle and not self._in_hand and not completer.busy:
                    if quiet and not self._claims:
                        drained = True  # nothing due, nothing running, nothing unrecorded
                        break
                    paused = None  # it began before the last outcomes were recorded: again
                elif self._in_hand or self._claims or (config.exit_when_idle and completer.busy):
                    # Running jobs, claims and outcomes being recorded wake the loop when they
                    # finish; a drain has nothing else to wait for, so it does not poll meanwhile.
                    paused = (None,)
                else:
                    paused = (time.monotonic() + idle,)
                    idle = min(idle * 2, config.poll_max_s)
            if drained:
                break
            if config.max_jobs is not None and self._claimed >= config.max_jobs:
                if not self._in_hand and not completer.busy and not self._claims:
                    break
                await self._sleep(None)  # a finishing job or a recorded outcome wakes us
                continue
            if paused is not None and paused[0] is not None and time.monotonic() >= paused[0]:
                paused = None
            # A second claim only while jobs are in hand (it keeps their slots full); with none,
            # one at a time, so that an empty answer that began quiet means drained.
            if paused is None and (
                not self._claims or (self._in_hand and len(self._claims) < config.claims_in_flight)
            ):
                limit = self._claim_limit()
                if limit:
                    quiet = not self._in_hand and not completer.busy and not self._claims
                    self._wake.clear()
                    claiming = asyncio.ensure_future(
                        client.claim(self.name, limit, types=types, lease_s=config.lease_s)
                    )
                    self._claims[claiming] = (limit, quiet)
                    claiming.add_done_callback(lambda _: self._wake.set())
            timeout = None
            if not self._claims and paused is not None and paused[0] is not None:
                timeout = max(0.0, paused[0] - time.monotonic())
            if await self._sleep(timeout) and paused is not None and not self._claims:
                idle, paused = config.poll_min_s, None  # a job finished, an outcome, a notify

    @property
    def _in_hand(self) -> int:
        """Jobs claimed and not finished running: waiting for a slot or running."""
        return len(self._holdings.waiting) + len(self._holdings.running)

    def _claim_limit(self) -> int:
        """How many jobs to claim now; 0: not now.

        Room is the free slots plus `prefetch`. A slot with no job waiting for it is claimed
        for at once; otherwise the loop waits until a quarter of the room is free, so that a
        burst of short jobs costs a few larger claims rather than one per job. A drain with
        nothing in hand claims only once its outcomes are recorded: a claim before then, if
        empty, would have to be repeated after them."""
        config = self.config
        assert self._completer is not None
        in_hand = self._in_hand
        if config.exit_when_idle and not in_hand and self._completer.busy:
            return 0
        ahead = config.ahead
        if config.prefetch is None and config.concurrency > 1:
            ahead = self._pace.ahead(config.concurrency, time.monotonic())
        coming = sum(limit for limit, _ in self._claims.values())  # what claims in flight may bring
        in_hand += coming
        room = config.concurrency + ahead - in_hand
        if config.max_jobs is not None:
            room = min(room, config.max_jobs - self._claimed - coming)
        if config.claim_batch is not None:
            room = min(room, config.claim_batch)
        if room <= 0:
            return 0
        idle_slots = config.concurrency - in_hand
        floor = max(1, (config.concurrency + ahead) // 4)
        return room if idle_slots > 0 or room >= floor else 0

    async def _sleep(self, timeout: float | None) -> bool:
        """Wait for a wake-up (notify, a freed slot, a stop) or the timeout; True when woken."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        self._wake.clear()
        return True

    # running one job
    def _hold_all(self, jobs: Sequence[Job]) -> None:
        """Jobs just claimed: their leases are held (and heartbeated) from now on, and they wait
        for a slot."""
        held, waiting = self._holdings.held, self._holdings.waiting
        by_type: dict[str, int] = {}
        for job in jobs:
            ctx = JobContext(job=job, worker=self.name, client=self._client)
            lease = lease_of(job)
            held[lease] = Held(ctx=ctx)
            waiting[lease] = ctx
            by_type[job.type] = by_type.get(job.type, 0) + 1
        for job_type, n in by_type.items():
            self.metrics.inc("claimed", n, job_type=job_type)

    def _want_keys(self, jobs: Sequence[Job]) -> None:
        """Start reading the signing keys of the claimed jobs that will be verified, in one
        query for the claim (`admission.KeyLoader`)."""
        policy = self._policy
        if not policy.verify or self._client is None:
            return
        signed = [job for job in jobs
                  if policy.require_signatures or self.registry.get(job.type).signed]  # fmt: skip
        if signed:
            if self._keys is None:
                self._keys = KeyLoader(self._client)
            self._keys.want(signed)

    def _start_waiting(self) -> None:
        """Start waiting jobs, oldest first, in the free slots."""
        holdings = self._holdings
        while holdings.waiting and len(holdings.running) < self.config.concurrency:
            lease = next(iter(holdings.waiting))
            ctx = holdings.waiting.pop(lease)
            self._start(ctx)

    def _start(self, ctx: JobContext) -> None:
        job = ctx.job
        spec = self.registry.get(job.type)
        running = Running(job=job, spec=spec, ctx=ctx)
        self._holdings.running[lease_of(job)] = running
        running.task = task = asyncio.get_running_loop().create_task(self._execute(running))
        self._holdings.tasks.add(task)
        task.add_done_callback(self._holdings.tasks.discard)

    async def _execute(self, running: Running) -> None:
        started = time.perf_counter()
        outcome: Outcome | None = None
        try:
            assert self._client is not None
            admission: Admission | Outcome | None
            try:
                admission = admit_now(running.job, running.spec, self._policy)
            except Exception:  # the full path below reports it and ends the attempt
                admission = None
            if admission is None:  # signatures or a token to check with the database
                if self._keys is None:
                    self._keys = KeyLoader(self._client)
                admission = await admitted(running, self._policy, self._client, keys=self._keys,
                                           metrics=self.metrics, worker=self.name)  # fmt: skip
            if isinstance(admission, Admission):
                running.ctx.run.admission = admission.shown()
                outcome = await outcome_of(
                    running,
                    self._executor,
                    self._middleware,
                    timeout_s=admission.timeout_s,
                    timeout_source=admission.timeout_source,
                    metrics=self.metrics,
                    worker=self.name,
                    deadlines=self._deadlines,
                )
            else:
                outcome = admission
        finally:
            self.metrics.observe_handler(time.perf_counter() - started, running.job.type)
            self._pace.finished(time.monotonic())
            del self._holdings.running[lease_of(running.job)]
            if not self._stopping and self._executor.abandoned <= self.config.max_abandoned:
                self._start_waiting()  # the freed slot's next job, without a loop turn
            self._wake.set()
        if running.ctx.stop_reason in NO_OUTCOME:
            assert self._client is not None
            await after_stop(
                running,
                self._holdings,
                client=self._client,
                executor=self._executor,
                metrics=self.metrics,
                worker=self.name,
            )
            return
        assert outcome is not None
        assert self._completer is not None
        self._completer.submit(outcome)

    # bookkeeping
    def _leases(self) -> list[Lease]:
        return list(self._holdings.held)

    def _on_heartbeat(self, lease: Lease, state: HeartbeatState) -> None:
        reason: StopReason = "canceled" if state == "canceled" else "lease_lost"
        ctx = self._holdings.waiting.pop(lease, None)
        if ctx is not None:  # never started: nothing to stop
            assert self._client is not None
            task = asyncio.ensure_future(
                drop_waiting(
                    ctx,
                    reason,
                    self._holdings,
                    client=self._client,
                    metrics=self.metrics,
                    worker=self.name,
                )
            )
            self._holdings.tasks.add(task)
            task.add_done_callback(self._holdings.tasks.discard)
            return
        stop_job(self._holdings, lease, reason, cancel_grace_s=self.config.cancel_grace_s)

    def _on_finished(self, outcome: Outcome, state: FinishState) -> None:
        held = self._holdings.held.pop((outcome.job_id, outcome.lease_token), None)
        counter = {"retry_scheduled": "retried"}.get(state, state)
        self.metrics.inc(counter, job_type=held.ctx.job.type if held is not None else NO_TYPE)
        if state == "lost" and held is not None:
            logger.warning(
                "job %d: lease lost before its outcome was recorded",
                outcome.job_id,
                extra=logs.job_fields(held.ctx.job, self.name),
            )
        self._wake.set()

    async def _shutdown(self, client: AsyncQueueClient) -> None:
        self._stopping = True
        config = self.config
        claims, self._claims = list(self._claims), {}
        if claims:
            # What claims in flight take is held like the rest, to be released below.
            await asyncio.wait(claims, timeout=_CLAIM_PATIENCE_S)
            for claiming in claims:
                if not claiming.done():
                    claiming.cancel()
                elif not claiming.cancelled() and claiming.exception() is None:
                    jobs = claiming.result()
                    self._claimed += len(jobs)
                    self._hold_all(jobs)
        release_waiting(self._holdings)
        await stop_running(
            self._holdings, grace_s=config.grace_s, grace_over=self._grace_over, worker=self.name
        )
        assert self._completer is not None
        await self._completer.close()
        await release_stopped(
            client, self._holdings, metrics=self.metrics, worker=self.name, lease_s=config.lease_s
        )


def _default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
