"""Job states and the one transition table. Standard library only.

The database enforces the same table (`jobforge.job_transitions`, checked by a trigger on every
status change), so an illegal transition is rejected by Postgres, not only by Python; a test
keeps the two identical.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"  #: waiting for run_at; a worker's claim moves it to running
    RUNNING = "running"  #: leased to one worker until the lease expires
    SUCCEEDED = "succeeded"  #: terminal: the handler returned
    FAILED = "failed"  #: terminal: a non-retryable error
    DEAD = "dead"  #: terminal: attempts exhausted (dead letter)
    CANCELED = "canceled"  #: terminal: canceled; late completions are rejected


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.DEAD, JobState.CANCELED})

#: (from, to) pairs, each with who makes the move.
TRANSITIONS: dict[tuple[JobState, JobState], str] = {
    (JobState.QUEUED, JobState.RUNNING): "claim",
    (JobState.QUEUED, JobState.CANCELED): "cancel",
    (JobState.RUNNING, JobState.RUNNING): "claim takes over an expired lease",
    (JobState.RUNNING, JobState.SUCCEEDED): "complete",
    (JobState.RUNNING, JobState.FAILED): "fail, non-retryable",
    (JobState.RUNNING, JobState.QUEUED): "fail, retryable (backoff) or lease released at shutdown",
    (JobState.RUNNING, JobState.DEAD): "fail or lease expiry with no attempts left",
    (JobState.RUNNING, JobState.CANCELED): "cancel",
    (JobState.FAILED, JobState.QUEUED): "reschedule",
    (JobState.DEAD, JobState.QUEUED): "reschedule",
    (JobState.CANCELED, JobState.QUEUED): "reschedule",
}


def can_transition(old: JobState, new: JobState) -> bool:
    return (old, new) in TRANSITIONS
