"""Counters and timings of a worker, and the queue's gauges, optionally exported to Prometheus.

Counters are plain integers in the worker process (cheap enough for every job), kept per job
type as well as in total: an operator asks "which type is failing", not only "is something
failing". When a metrics port is given, prometheus-client (the `metrics` extra) serves them,
labelled by worker and job type, with the queue's own gauges (jobs by type and state, the age of
the oldest due job, leases expiring, dead in the last 24 h) from the same query as
`jobforge jobs stats` and `jobforge health` (`jobforge.queue.stats`), refreshed by the worker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jobforge import errors
from jobforge.queue.stats import QueueStats

COUNTERS = (
    "claimed",  # jobs taken from the queue
    "succeeded",
    "retried",  # failed retryably, back in the queue with backoff
    "failed",  # failed non-retryably
    "dead",  # failed with no attempts left
    "timed_out",
    "refused",  # failed before the handler ran: signatures or policy token did not hold
    "reaped",  # stale leases of any type this worker expired (back to the queue, or dead)
    "canceled",  # canceled in the database while running
    "lost",  # lease lost: the outcome was not recorded
    "released",  # lease given back at shutdown
    "abandoned",  # sync handler threads given up on (timeout or cancel, still running)
    "pruned",  # finished jobs this worker's prune passes deleted (past their retention)
    "scheduled",  # schedule slots this worker's passes fired (enqueued, or logged in a dry run)
    "schedule_failures",  # slots whose job could not be enqueued, schedules paused as broken
)

#: The job type label of a count that belongs to no one type (reaped leases of any type, threads
#: abandoned): empty, which Prometheus reads as the label being absent.
NO_TYPE = ""


@dataclass
class Metrics:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    #: the same counts per (counter, job type)
    by_type: dict[tuple[str, str], int] = field(default_factory=dict)
    handler_seconds: float = 0.0
    handler_calls: int = 0
    #: the last queue figures the worker read (`Worker` refreshes them while metrics are served)
    queue: QueueStats | None = None
    _exporter: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def serving(self) -> bool:
        return self._exporter is not None

    def inc(self, name: str, n: int = 1, job_type: str = NO_TYPE) -> None:
        with self._lock:
            self.counts[name] += n
            self.by_type[name, job_type] = self.by_type.get((name, job_type), 0) + n
        if self._exporter is not None:
            self._exporter.inc(name, n, job_type)

    def observe_handler(self, seconds: float, job_type: str = NO_TYPE) -> None:
        with self._lock:
            self.handler_seconds += seconds
            self.handler_calls += 1
        if self._exporter is not None:
            self._exporter.observe(seconds, job_type)

    def set_queue(self, stats: QueueStats) -> None:
        """The queue's figures, served as gauges from now on (replacing the last ones whole, so
        a type or state that emptied out goes away rather than keeping its last count)."""
        self.queue = stats

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {**self.counts, "handler_seconds": round(self.handler_seconds, 6)}

    def serve(self, port: int, worker: str) -> None:
        """Expose the counters over HTTP on `port` (needs prometheus-client)."""
        self._exporter = _Prometheus(port, worker, self)


def queue_families(
    stats: QueueStats | None,
) -> Iterator[tuple[str, str, list[str], list[tuple[list[str], float]]]]:
    """The queue gauges as (name, help, label names, [(label values, value)]): the shape a
    Prometheus collector yields, kept free of prometheus-client so it is tested without it."""
    if stats is None:
        return
    jobs = [([job_type, state], float(n)) for job_type, states in sorted(stats.by_type().items())
            for state, n in sorted(states.items())]  # fmt: skip
    yield "jobforge_queue_jobs", "jobs by type and state (every tenant)", ["type", "state"], jobs
    single = (
        ("jobforge_queue_oldest_due_seconds", "how long the oldest due job has waited",
         stats.oldest_due_s),
        ("jobforge_queue_leases_expiring", "leases near their end without renewal",
         float(stats.leases_expiring)),
        ("jobforge_queue_leases_expired", "leases past their end, not yet reaped",
         float(stats.leases_expired)),
        ("jobforge_queue_dead_24h", "jobs that died in the last 24 h", float(stats.dead_24h)),
        ("jobforge_queue_stats_timestamp_seconds", "when the queue figures were read",
         stats.at.timestamp()),
    )  # fmt: skip
    for name, help_text, value in single:
        yield name, help_text, [], [([], value)]


class _Prometheus:
    def __init__(self, port: int, worker: str, metrics: Metrics) -> None:
        try:
            import prometheus_client as prom
            from prometheus_client.core import GaugeMetricFamily
        except ImportError:
            raise errors.ConfigurationError(
                "a metrics port needs prometheus-client: pip install 'jobforge[metrics]'"
            ) from None
        registry = prom.CollectorRegistry()
        self._counters = {
            name: prom.Counter(
                f"jobforge_jobs_{name}", f"jobs {name}", ["worker", "type"], registry=registry
            )
            for name in COUNTERS
        }
        self._seconds = prom.Histogram(
            "jobforge_handler_seconds", "handler run time", ["worker", "type"], registry=registry
        )
        self._worker = worker

        class QueueCollector:
            """The queue gauges, as the worker last read them (no query at scrape time)."""

            def collect(self) -> Iterator[Any]:
                for name, help_text, labels, samples in queue_families(metrics.queue):
                    family = GaugeMetricFamily(name, help_text, labels=labels)
                    for values, value in samples:
                        family.add_metric(values, value)
                    yield family

        registry.register(QueueCollector())  # a collector is anything with collect()
        try:
            prom.start_http_server(port, registry=registry)
        except OSError as exc:
            raise errors.ConfigurationError(f"cannot serve metrics on port {port}: {exc}") from None

    def inc(self, name: str, n: int, job_type: str) -> None:
        self._counters[name].labels(self._worker, job_type).inc(n)

    def observe(self, seconds: float, job_type: str) -> None:
        self._seconds.labels(self._worker, job_type).observe(seconds)
