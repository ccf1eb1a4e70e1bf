"""The log lines of a run, captured while it runs and stored with its record, redacted.

One handler on the root logger (installed once) hands each record to the run whose code emitted
it: the run's buffer is a context variable, set by the recorder around the handler; the worker
runs each job in a task of its own and a sync runner's thread in a copy of that context, so a
line lands in its own run's buffer and no other. What is captured is what the process's logging
lets through (its levels); jobforge adds no level of its own.

Redaction reuses the run's `Redactor` (`jobforge.runtime.redact`): structured fields (`extra=`)
are redacted like a run's input, and in the text of a message or a traceback a value written
`key=value` or `key: value` under a secret-looking key is replaced, as is every secret value of
the job's input (a value under a secret-looking key of the payload) wherever it appears.

A run keeps at most `MAX_LINES` lines and `MAX_BYTES` bytes of them; past that, one last line
says how many were dropped.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from jobforge.runtime.redact import Redactor

MAX_LINES = 10_000
MAX_BYTES = 4 * 1024 * 1024

#: The attributes every LogRecord has: the rest are a call's `extra=` fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName",
}  # fmt: skip
#: `key=value`, `key: value`, `"key": "value"` in a text.
_PAIR = re.compile(
    r"(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<q1>[\"']?)(?P<sep>\s*[=:]\s*)(?P<q2>[\"']?)"
    r"(?P<value>[^\s\"',;&}]+)"
)
#: Secret values shorter than this are not searched for in text (they would mask common words).
_MIN_SECRET = 4


class RunLog:
    """The captured lines of one run (thread-safe: a sync runner's threads log into it).

    Lines are kept as logged, in memory only, and redacted by `render` with the redactor the
    record is built with: a runner's own secret keys (`@runner(secret_keys=...)`) are known only
    once it has started, after its first lines may have been logged."""

    def __init__(self, payload: Any = None) -> None:
        self._payload = payload
        self._entries: list[dict[str, Any]] = []
        self._bytes = 0
        self._dropped = 0
        self._lock = threading.Lock()

    def add(self, record: logging.LogRecord) -> None:
        entry = _entry(record)
        size = len(json.dumps(entry, default=str, ensure_ascii=False).encode()) + 1
        with self._lock:
            if len(self._entries) >= MAX_LINES or self._bytes + size > MAX_BYTES:
                self._dropped += 1
                return
            self._entries.append(entry)
            self._bytes += size

    def render(self, redactor: Redactor) -> bytes:
        """The lines as JSON Lines, redacted (empty when nothing was logged)."""
        secrets = secret_values(self._payload, redactor)
        with self._lock:
            entries, dropped = list(self._entries), self._dropped
        lines = []
        for entry in entries:
            shown = {**entry, "message": mask_text(entry["message"], redactor, secrets)}
            if "fields" in entry:
                shown["fields"] = redactor(entry["fields"])
            if "exception" in entry:
                shown["exception"] = mask_text(entry["exception"], redactor, secrets)
            lines.append(json.dumps(shown, ensure_ascii=False))
        if dropped:
            note = {"level": "warning", "logger": "jobforge.worker",
                    "message": f"{dropped} more log lines were dropped (a run keeps "
                               f"{MAX_LINES} lines, {MAX_BYTES} bytes)"}  # fmt: skip
            lines.append(json.dumps(note))
        return "".join(f"{line}\n" for line in lines).encode()


def _entry(record: logging.LogRecord) -> dict[str, Any]:
    """A log record as it was logged (not redacted yet)."""
    try:
        message = record.getMessage()
    except Exception as exc:  # a bad format string: keep what there is
        message = f"{record.msg!r} (unformattable: {type(exc).__name__})"
    entry: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": message,
    }
    fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    if fields:
        entry["fields"] = _plain(fields)
    if record.exc_info:
        entry["exception"] = logging.Formatter().formatException(record.exc_info)
    return entry


def mask_text(text: str, redactor: Redactor, secrets: list[str]) -> str:
    """`text` with the values written `key=value` under secret-looking keys masked, and every
    one of `secrets` (the input's secret values, longest first) wherever it appears."""

    def pair(match: re.Match[str]) -> str:
        if not redactor.is_secret(match.group("key")):
            return match.group(0)
        masked = redactor.mask(match.group("value"))
        return match.group(0)[: match.start("value") - match.start(0)] + str(masked)

    text = _PAIR.sub(pair, text)
    for secret in secrets:
        text = text.replace(secret, str(redactor.mask(secret)))
    return text


def secret_values(payload: Any, redactor: Redactor) -> list[str]:
    """The input's secret values to look for in text, longest first."""
    return sorted(_secret_values(payload, redactor), key=len, reverse=True)


def _plain(value: Any) -> Any:
    """`value` as JSON-able data (what json cannot take, as its str)."""
    return json.loads(json.dumps(value, default=str))


def _secret_values(value: Any, redactor: Redactor) -> set[str]:
    """The strings under secret-looking keys anywhere in `value`."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and redactor.is_secret(key):
                found |= {s for s in _strings(item) if len(s) >= _MIN_SECRET}
            else:
                found |= _secret_values(item, redactor)
    elif isinstance(value, list):
        for item in value:
            found |= _secret_values(item, redactor)
    return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


_CURRENT: contextvars.ContextVar[RunLog | None] = contextvars.ContextVar(
    "jobforge_run_log", default=None
)


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        log = _CURRENT.get()
        if log is not None:
            try:
                log.add(record)
            except Exception:  # a log line never fails a run
                self.handleError(record)


_HANDLER = _Handler()
_INSTALL = threading.Lock()


def install() -> None:
    """Put the capturing handler on the root logger (once per process), and on the `jobforge`
    logger when that one does not pass its records on (`jobforge.worker.logs.configure`)."""
    with _INSTALL:
        root = logging.getLogger()
        for logger in (root, logging.getLogger("jobforge")):
            if (logger is root or not logger.propagate) and _HANDLER not in logger.handlers:
                logger.addHandler(_HANDLER)


@contextmanager
def capturing(log: RunLog) -> Iterator[RunLog]:
    """Lines logged in this context (and the tasks and threads it starts) go to `log`."""
    install()
    token = _CURRENT.set(log)
    try:
        yield log
    finally:
        _CURRENT.reset(token)
