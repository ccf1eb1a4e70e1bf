"""What a handler gets besides its payload: the job's ids, a cancellation signal, progress."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from jobforge.queue.async_client import AsyncQueueClient
from jobforge.queue.models import Job
from jobforge.worker.slot import RunSlot

#: Why a running job is asked to stop.
StopReason = Literal["canceled", "lease_lost", "timeout", "shutdown"]


class CancelFlag:
    """A cancellation flag handler threads can wait on, whose `threading.Event` is made on the
    first `wait()`: most jobs never wait, and an Event (or a lock of its own) for every job cost
    a lock and a condition each."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        # The flag first, then the event: a `wait` that made its event after this read sees the
        # flag when it looks again (below), one that made it before is woken here.
        self._set = True
        event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._set:
            return True
        with _EVENTS:
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        if self._set:  # set while the event was being made
            return True
        return event.wait(timeout)


#: Guards the making of a flag's event (rare: a handler waiting on its cancellation).
_EVENTS = threading.Lock()
#: Guards every context's pending progress (a handler thread writes, the loop takes).
_PROGRESS = threading.Lock()


@dataclass(eq=False)
class JobContext:
    """One attempt of one job. Thread-safe: sync handlers run in threads, async ones on the loop.

    `cancelled` is set when the job is canceled in the database (seen at the next heartbeat),
    its lease is lost, it times out, or the worker shuts down; `stop_reason` says which.
    """

    job: Job
    worker: str
    cancelled: CancelFlag = field(default_factory=CancelFlag)
    stop_reason: StopReason | None = None
    #: The runner's attempt: set up by a harness (golden, replay), filled in by the runner
    #: adapter, read by the recorder.
    run: RunSlot = field(default_factory=RunSlot)
    #: The worker's queue client (middleware such as the recorder writes through it).
    client: AsyncQueueClient | None = None
    #: Free for user middleware to leave things for each other; jobforge keeps nothing here.
    extensions: dict[str, Any] = field(default_factory=dict)
    _progress: tuple[float, str | None] | None = None

    @property
    def job_id(self) -> int:
        return self.job.id

    @property
    def tenant_id(self) -> str:
        return self.job.tenant_id

    @property
    def attempt(self) -> int:
        return self.job.attempts

    @property
    def trace_id(self) -> str | None:
        return self.job.trace_id

    def progress(self, pct: float, message: str | None = None) -> None:
        """Report progress; the worker writes the latest value at most every progress interval."""
        if not 0 <= pct <= 100:
            raise ValueError(f"progress must be between 0 and 100, not {pct}")
        with _PROGRESS:
            self._progress = (float(pct), message)

    def take_progress(self) -> tuple[float, str | None] | None:
        with _PROGRESS:
            pending, self._progress = self._progress, None
            return pending

    def stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.cancelled.set()
