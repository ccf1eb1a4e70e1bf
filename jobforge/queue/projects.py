"""Project names, checked as the database checks them (migrations/0002: the jobs table's CHECK),
so a bad name is one line naming the field before anything is sent.

A project is a partition of a tenant's jobs. A job's `project` is set when it is enqueued
(`NewJob.project`; left out, the client's project scope, else `default`); a client's project
scope (`QueueClient(project=...)`, the CLI's `--project`) walls it off from every other project
of its tenant by row-level security (migrations/0016)."""

from __future__ import annotations

import re

from jobforge import errors

#: The jobs table's rule: 1-128 of A-Z a-z 0-9 . _ -
PROJECT = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: What a project is when a job names none and its session has no project scope.
DEFAULT_PROJECT = "default"
RULE = "1 to 128 of A-Z a-z 0-9 . _ -"


def problem(value: object) -> str | None:
    """Why `value` is not a project name, or None when it is one."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if len(value) > 128:
        return f"is {len(value)} characters, over the limit of 128 ({RULE})"
    if not PROJECT.fullmatch(value):
        return f"{value[:80]!r} is not a project name ({RULE})"
    return None


def checked(value: str | None, what: str = "project") -> str | None:
    """`value` when it is a project name (or None); else a one-line `ConfigurationError`."""
    if value is None:
        return None
    if (why := problem(value)) is not None:
        raise errors.ConfigurationError(f"{what} {why}")
    return value
