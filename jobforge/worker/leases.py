"""What the worker holds, keyed by lease: the jobs claimed ahead that wait for a slot, the jobs
whose handlers run, the leases not yet given back (waiting, running, or their outcome
unrecorded), the ones the shutdown stopped or never started, and the tasks.

A lease is the job and the secret token of one claim of it. The worker's state is keyed by
lease, not by job: when its own expired lease of a job is claimed again (a network blip longer
than the lease), the old attempt and the new one are two entries, and what happens to the old
one (lost) never touches the new one.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from jobforge.queue import Job
from jobforge.worker.context import JobContext
from jobforge.worker.registry import HandlerSpec

Lease = tuple[int, uuid.UUID]


@dataclass(eq=False)
class Running:
    """A job whose handler runs, in `task`."""

    job: Job
    spec: HandlerSpec
    ctx: JobContext
    task: asyncio.Task[None] | None = None


@dataclass(eq=False)
class Held:
    """A lease the worker still holds: its job runs, or its outcome is not recorded yet."""

    ctx: JobContext


@dataclass
class Holdings:
    #: claimed ahead, not started, oldest first (a dict keeps the claim order)
    waiting: dict[Lease, JobContext] = field(default_factory=dict)
    running: dict[Lease, Running] = field(default_factory=dict)
    held: dict[Lease, Held] = field(default_factory=dict)  #: leases: waiting, running, unrecorded
    #: stopped by shutdown, or never started: to release, with each job's type (for the counters)
    release: dict[Lease, str] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  #: running or compensating


def lease_of(job: Job) -> Lease:
    assert job.lease_token is not None
    return (job.id, job.lease_token)
