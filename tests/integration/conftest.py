"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobforge.provision import ClonePool, Template
from tests.integration.clones import Clones


@pytest.fixture
def clones(jobforge_template: Template) -> Iterator[Clones]:
    pool = ClonePool(jobforge_template, ahead=1, threads=1)
    try:
        yield Clones(pool)
    finally:
        pool.close()
