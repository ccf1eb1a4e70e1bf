"""Daemon threads for sync handlers, with room to abandon a thread that will not stop.

`concurrent.futures.ThreadPoolExecutor` cannot give up on a running call: its threads are joined
at interpreter exit, so one stuck handler would hang a worker's shutdown forever, and a stuck
thread keeps its slot. Here a timed-out call is abandoned: a fresh thread takes its place, and the
old one exits when (if) its call returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    context: contextvars.Context
    slots: ThreadSlots
    abandoned: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class ThreadSlots:
    """`size` daemon threads running calls; abandoned calls do not count against `size`."""

    def __init__(self, size: int, name: str = "jobforge-job") -> None:
        self._size = size
        self._name = name
        self._queue: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._settled: deque[tuple[Call, Any, BaseException | None]] = deque()
        self._wakeup_pending = False
        self.abandoned = 0  #: abandoned calls still running
        self.abandoned_total = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> Call:
        loop = asyncio.get_running_loop()
        call = Call(fn, args, loop, loop.create_future(), contextvars.copy_context(), self)
        with self._lock:
            if self._threads - self.abandoned < self._size:  # abandoned threads hold no slot
                self._spawn()
        self._queue.put(call)
        return call

    def abandon(self, call: Call) -> bool:
        """Give up on `call` if it still runs; a new thread takes its place."""
        with self._lock:
            if call.abandoned or call.done.is_set():
                return False
            call.abandoned = True
            self.abandoned += 1
            self.abandoned_total += 1
            self._spawn()
        return True

    def _settle(self) -> None:
        """On the loop: hand every finished call's outcome to its awaiting task."""
        with self._lock:
            settled, self._settled = self._settled, deque()
            self._wakeup_pending = False
        for call, result, exc in settled:
            if call.future.done():
                continue
            if exc is not None:
                call.future.set_exception(exc)
            else:
                call.future.set_result(result)

    def close(self) -> None:
        with self._lock:
            for _ in range(self._threads):
                self._queue.put(None)

    def _spawn(self) -> None:
        self._threads += 1
        threading.Thread(
            target=self._work, name=f"{self._name}-{self._threads}", daemon=True
        ).start()

    def _work(self) -> None:
        while (call := self._queue.get()) is not None:
            if call.abandoned:  # given up before it started: never run it
                self._finished(call)
                return
            try:
                result = call.context.run(call.fn, *call.args)
            except BaseException as exc:  # handed to the awaiting task, not lost
                _resolve(call, None, exc)
            else:
                _resolve(call, result, None)
            if self._finished(call):
                return  # a replacement took this thread's place

    def _finished(self, call: Call) -> bool:
        with self._lock:
            call.done.set()
            if call.abandoned:
                self.abandoned -= 1
                self._threads -= 1
            return call.abandoned


def _resolve(call: Call, result: Any, exc: BaseException | None) -> None:
    slots = call.slots
    with slots._lock:
        slots._settled.append((call, result, exc))
        if slots._wakeup_pending:
            return  # the loop is already told: one self-pipe write serves a burst of calls
        slots._wakeup_pending = True
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
        call.loop.call_soon_threadsafe(slots._settle)
