"""Shared test wiring: pytester for the plugin tests (jobforge's fixtures come from its plugin),
and the `jobforge` logger put back after every test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _jobforge_logger_restored() -> Iterator[None]:
    """A CLI command run in-process (`jobforge worker`) configures the `jobforge` logger: its own
    handler on the runner's stderr, which closes with the test, and no propagation. Left so, it
    broke every later test of the same process that reads the logs with `caplog`."""
    logger = logging.getLogger("jobforge")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate = saved[0], saved[1]
    logger.setLevel(saved[2])
