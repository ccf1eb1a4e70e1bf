"""Fresh clones for lane and fresh-interpreter tests, counted as they are taken and returned."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from jobforge.provision import ClonePool


class Clones:
    """`jobforge.golden.lane.Databases` over a clone pool, counting what it handed out and got
    back."""

    def __init__(self, pool: ClonePool) -> None:
        self.pool = pool
        self.taken: list[str] = []
        self.returned: list[str] = []

    @contextmanager
    def __call__(self) -> Iterator[str]:
        database = self.pool.acquire()
        self.taken.append(database.dsn)
        try:
            yield database.dsn
        finally:
            self.returned.append(database.dsn)
            self.pool.release(database)
