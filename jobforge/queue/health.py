"""Health thresholds over `QueueStats`: what `jobforge health` checks, one line per breach.

Kept apart from the CLI so a service's own health endpoint can apply the same thresholds to the
same figures (`QueueClient.stats(succeeded=False)`, then `breaches`).
"""

from __future__ import annotations

from dataclasses import dataclass

from jobforge.queue.stats import QueueStats

#: The default --max-oldest-due: a job due five minutes ago and still not claimed means no
#: worker takes its type, or the workers cannot keep up.
DEFAULT_MAX_OLDEST_DUE_S = 300.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Limits a healthy queue stays within; None: not checked."""

    max_oldest_due_s: float | None = DEFAULT_MAX_OLDEST_DUE_S
    max_due: int | None = None
    max_dead_24h: int | None = None
    max_expiring: int | None = None


def span(seconds: float) -> str:
    """`2h5m`, `7m12s`, `45s`, `0.4s`: a duration as an operator reads it."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n]
    return "".join(shown[:2])


def breaches(stats: QueueStats, limits: Thresholds) -> list[str]:
    """One line per threshold the figures exceed, naming the figure, the limit and its option."""
    found = []
    if limits.max_oldest_due_s is not None and stats.oldest_due_s > limits.max_oldest_due_s:
        found.append(
            f"the oldest due job has waited {span(stats.oldest_due_s)}, over --max-oldest-due "
            f"{span(limits.max_oldest_due_s)} ({stats.totals['due']} jobs due)"
        )
    if limits.max_due is not None and stats.totals["due"] > limits.max_due:
        found.append(f"{stats.totals['due']} jobs are due, over --max-due {limits.max_due}")
    if limits.max_dead_24h is not None and stats.dead_24h > limits.max_dead_24h:
        found.append(
            f"{stats.dead_24h} jobs died in the last 24 h, over --max-dead-24h "
            f"{limits.max_dead_24h}"
        )
    if limits.max_expiring is not None and stats.leases_expiring > limits.max_expiring:
        found.append(
            f"{stats.leases_expiring} leases end within {span(stats.expiring_s)} without renewal "
            f"({stats.leases_expired} already expired), over --max-expiring {limits.max_expiring}"
        )
    return found
