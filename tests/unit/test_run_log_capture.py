"""The run's captured log lines (`jobforge.worker.capture`): what a run logs lands in its own
buffer, redacted with the run record's redactor, bounded, and nothing outside a run is kept."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from jobforge.runtime.redact import Redactor
from jobforge.worker import capture
from jobforge.worker.capture import RunLog, capturing, mask_text, secret_values

log = logging.getLogger("tests.capture")


def lines(run: RunLog, redactor: Redactor | None = None) -> list[dict[str, object]]:
    rendered = run.render(redactor or Redactor(key=None))
    return [json.loads(line) for line in rendered.decode().splitlines()]


def test_key_value_secrets_and_the_input_s_secret_values_are_masked() -> None:
    redactor = Redactor(key=None)
    secrets = secret_values({"target": "db-1", "creds": {"api_key": "sk-live-XYZ"}}, redactor)
    text = mask_text(
        'password=hunter2 token: abc123 "client_secret": "s3cr3t" user=bob '
        "calling with sk-live-XYZ",
        redactor,
        secrets,
    )
    assert text == (
        'password=[redacted] token: [redacted] "client_secret": "[redacted]" user=bob '
        "calling with [redacted]"
    )


def test_a_keyed_redactor_leaves_comparable_markers() -> None:
    masked = mask_text("password=hunter2", Redactor(key=b"k" * 32), [])
    assert masked.startswith("password=[redacted:")
    assert "hunter2" not in masked


def test_lines_carry_level_logger_fields_and_traceback_redacted() -> None:
    run = RunLog({"password": "pw-value-1"})
    logger = logging.getLogger("tests.capture.fields")
    logger.setLevel(logging.INFO)
    with capturing(run):
        logger.info("step %d", 1, extra={"api_token": "t-1", "rows": 3})
        try:
            raise ValueError("failed with pw-value-1")
        except ValueError:
            logger.exception("boom")
    first, second = lines(run)
    assert (first["level"], first["logger"], first["message"]) == ("info", logger.name, "step 1")
    assert first["fields"] == {"api_token": "[redacted]", "rows": 3}
    assert second["level"] == "error"
    assert "ValueError: failed with [redacted]" in str(second["exception"])


def test_nothing_is_kept_outside_a_run_and_threads_of_the_run_are_kept() -> None:
    run = RunLog()
    log.warning("before")
    with capturing(run):
        import contextvars

        context = contextvars.copy_context()  # what the worker's threads run in
        thread = threading.Thread(target=context.run, args=(log.warning, "in a thread"))
        thread.start()
        thread.join()
        log.warning("inside")
    log.warning("after")
    assert [line["message"] for line in lines(run)] == ["in a thread", "inside"]


def test_a_run_keeps_at_most_the_limit_and_says_what_it_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(capture, "MAX_LINES", 3)
    run = RunLog()
    with capturing(run):
        for i in range(5):
            log.warning("line %d", i)
    found = lines(run)
    assert [line["message"] for line in found[:3]] == ["line 0", "line 1", "line 2"]
    assert "2 more log lines were dropped" in str(found[3]["message"])


def test_an_unformattable_message_is_kept_not_raised() -> None:
    run = RunLog()
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "%d items", ("nan",), None)
    run.add(record)  # (pytest's own handler would raise on it first)
    (line,) = lines(run)
    assert "unformattable" in str(line["message"])


def test_the_runner_s_own_secret_keys_apply_to_lines_logged_before_they_were_known() -> None:
    run = RunLog({"license": "LIC-12345"})
    with capturing(run):
        log.warning("using license=LIC-12345")
    (plain,) = lines(run)
    assert plain["message"] == "using license=LIC-12345"  # not a secret-looking name
    (masked,) = lines(run, Redactor(key=None).for_runner(["license"], []))
    assert masked["message"] == "using license=[redacted]"
