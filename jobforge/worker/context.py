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
    """A `threading.Event` made on first `wait()`: most jobs never wait, and an Event costs a
    lock and a condition for every job."""

    __slots__ = ("_event", "_lock", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: threading.Event | None = None
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            self._set = True
            if self._event is not None:
                self._event.set()

    def wait(self, timeout: float | None = None) -> bool:
        with self._lock:
            if self._set:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)


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
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
        with self._lock:
            self._progress = (float(pct), message)

    def take_progress(self) -> tuple[float, str | None] | None:
        with self._lock:
            pending, self._progress = self._progress, None
            return pending

    def stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.cancelled.set()
