"""A server the user gave us for scratch databases (`JOBFORGE_SCRATCH_DATABASE_URL` or the plugin
option): used, never managed."""

from __future__ import annotations

from dataclasses import dataclass

from jobforge import db


@dataclass
class ExternalServer:
    url: str
    origin: str = "url"
    started_in_s: float = 0.0
    source: str = "JOBFORGE_SCRATCH_DATABASE_URL"  #: where the URL came from

    @property
    def dsn(self) -> str:
        return self.url

    def describe(self) -> str:
        return f"the server at {db.describe(self.url)} (from {self.source})"

    def stop(self) -> None:
        """Nothing to stop: scratch databases are dropped by whoever made them."""


def open_external(url: str, *, source: str = "JOBFORGE_SCRATCH_DATABASE_URL") -> ExternalServer:
    """Check that the server answers now, so a bad URL fails once, clearly, naming host and port."""
    with db.connect(url) as conn:
        conn.execute("SELECT 1")
    return ExternalServer(url, source=source)
