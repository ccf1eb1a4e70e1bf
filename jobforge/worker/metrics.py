"""Counters and timings of a worker, optionally exported to Prometheus.

Counters are plain integers in the worker process (cheap enough for every job); when a metrics
port is given, prometheus-client (the `metrics` extra) serves them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from jobforge import errors

COUNTERS = (
    "claimed",  # jobs taken from the queue
    "succeeded",
    "retried",  # failed retryably, back in the queue with backoff
    "failed",  # failed non-retryably
    "dead",  # failed with no attempts left
    "timed_out",
    "reaped",  # stale leases of any type this worker expired (back to the queue, or dead)
    "canceled",  # canceled in the database while running
    "lost",  # lease lost: the outcome was not recorded
    "released",  # lease given back at shutdown
    "abandoned",  # sync handler threads given up on (timeout or cancel, still running)
    "pruned",  # finished jobs this worker's prune passes deleted (past their retention)
)


@dataclass
class Metrics:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    handler_seconds: float = 0.0
    handler_calls: int = 0
    _exporter: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n
        if self._exporter is not None:
            self._exporter.inc(name, n)

    def observe_handler(self, seconds: float) -> None:
        with self._lock:
            self.handler_seconds += seconds
            self.handler_calls += 1
        if self._exporter is not None:
            self._exporter.observe(seconds)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {**self.counts, "handler_seconds": round(self.handler_seconds, 6)}

    def serve(self, port: int, worker: str) -> None:
        """Expose the counters over HTTP on `port` (needs prometheus-client)."""
        self._exporter = _Prometheus(port, worker)


class _Prometheus:
    def __init__(self, port: int, worker: str) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise errors.ConfigurationError(
                "a metrics port needs prometheus-client: pip install 'jobforge[metrics]'"
            ) from None
        registry = prom.CollectorRegistry()
        self._counters = {
            name: prom.Counter(
                f"jobforge_jobs_{name}", f"jobs {name}", ["worker"], registry=registry
            )
            for name in COUNTERS
        }
        self._seconds = prom.Histogram(
            "jobforge_handler_seconds", "handler run time", ["worker"], registry=registry
        )
        self._worker = worker
        try:
            prom.start_http_server(port, registry=registry)
        except OSError as exc:
            raise errors.ConfigurationError(f"cannot serve metrics on port {port}: {exc}") from None

    def inc(self, name: str, n: int) -> None:
        self._counters[name].labels(self._worker).inc(n)

    def observe(self, seconds: float) -> None:
        self._seconds.labels(self._worker).observe(seconds)
