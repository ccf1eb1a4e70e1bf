"""Structured logs: every record about a job carries its id, type, tenant and trace id."""

from __future__ import annotations

import json
import logging
from typing import Any

from jobforge.queue.models import Job

logger = logging.getLogger("jobforge.worker")

_FIELDS = ("worker", "job_id", "job_type", "tenant_id", "trace_id", "attempt", "outcome")


def job_fields(job: Job, worker: str) -> dict[str, Any]:
    return {
        "worker": worker,
        "job_id": job.id,
        "job_type": job.type,
        "tenant_id": job.tenant_id,
        "trace_id": job.trace_id,
        "attempt": job.attempts,
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the job fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                body[name] = value
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


class TextFormatter(logging.Formatter):
    """Human lines; job fields appended as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(
            f"{name}={getattr(record, name)}"
            for name in _FIELDS
            if getattr(record, name, None) is not None
        )
        return f"{line} {extra}" if extra else line


def configure(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger("jobforge")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
