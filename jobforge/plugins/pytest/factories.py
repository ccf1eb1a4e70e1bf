"""Fixture factories, for users who need more databases than the built-in fixtures give."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from jobforge.plugins.pytest.plugin import SESSION_KEY

if TYPE_CHECKING:
    from jobforge.provision import Database, Template


def template(
    migrations_dir: str | Path | None = None, *, server_fixture: str = "jobforge_server"
) -> Any:
    """A session fixture: a template migrated from `migrations_dir` (default: jobforge's own)."""

    @pytest.fixture(scope="session")
    def _template(request: pytest.FixtureRequest) -> Template:
        request.getfixturevalue(server_fixture)
        folder = Path(migrations_dir) if migrations_dir is not None else None
        return request.config.stash[SESSION_KEY].template(folder)

    return _template


def database(template_fixture: str = "jobforge_template") -> Callable[..., Iterator[Database]]:
    """A function fixture: a fresh clone of the template fixture named `template_fixture`."""

    @pytest.fixture
    def _database(request: pytest.FixtureRequest) -> Iterator[Database]:
        tpl: Template = request.getfixturevalue(template_fixture)
        pool = request.config.stash[SESSION_KEY].pool(tpl)
        db = pool.acquire()
        yield db
        pool.release(db)

    return _database
