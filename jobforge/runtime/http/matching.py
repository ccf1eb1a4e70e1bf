"""Replay matching: the recorded exchanges served by (method, redacted URL, body hash) in
recorded order, and, for a request nothing matches, the nearest unused exchanges to show.
"""

from __future__ import annotations

import difflib
import threading
from collections import deque
from collections.abc import Sequence

import httpx

from jobforge.errors import UnrecordedRequest
from jobforge.runtime.http.exchange import Exchange
from jobforge.runtime.http.policy import HttpPolicy


def _key(method: str, url: str, sha: str | None) -> tuple[str, str, str | None]:
    return method.upper(), url, sha


def _describe(method: str, url: str, sha: str | None) -> str:
    return f"{method} {url} (body {sha or 'empty'})"


class _Replay:
    """The recorded exchanges, served by key in recorded order (thread-safe)."""

    def __init__(self, exchanges: Sequence[Exchange], policy: HttpPolicy) -> None:
        self.exchanges = list(exchanges)
        self._queues: dict[tuple[str, str, str | None], deque[int]] = {}
        self._used: set[int] = set()
        self._lock = threading.Lock()
        for i, ex in enumerate(self.exchanges):
            key = _key(ex.method, policy.redacted_url(ex.url), ex.request_body_sha256)
            self._queues.setdefault(key, deque()).append(i)

    def take(self, method: str, url: str, sha: str | None, raw_sha: str | None = None) -> Exchange:
        """The next exchange recorded for the request; `raw_sha` (the hash of the body as sent)
        is tried after `sha` (its secrets blanked): a recording made before request bodies
        were hashed that way still replays."""
        key = _key(method, url, sha)
        with self._lock:
            queue = self._queues.get(key)
            if not queue and raw_sha != sha and self._queues.get(_key(method, url, raw_sha)):
                queue = self._queues[_key(method, url, raw_sha)]
            if queue:
                index = queue.popleft()
                self._used.add(index)
                return self.exchanges[index]
            unused = [ex for i, ex in enumerate(self.exchanges) if i not in self._used]
        asked = _describe(method.upper(), url, sha)
        if queue is not None:
            raise UnrecordedRequest(
                f"no recorded HTTP exchange left for {asked}: every recorded exchange for it "
                f"was already served (this run makes the request more often than the recorded "
                f"run did)"
            )
        if not unused:
            hint = "every recorded exchange has already been served"
        else:
            nearest = sorted(unused, key=lambda ex: _similarity(key, ex), reverse=True)[:3]
            hint = "nearest unused recorded exchanges:\n" + "\n".join(
                f"  - {_describe(ex.method, ex.url, ex.request_body_sha256)}" for ex in nearest
            )
        raise UnrecordedRequest(f"no recorded HTTP exchange matches {asked}; {hint}")


def _similarity(key: tuple[str, str, str | None], ex: Exchange) -> tuple[int, int, float]:
    method, url, sha = key
    same_path = httpx.URL(url).copy_with(query=None) == httpx.URL(ex.url).copy_with(query=None)
    return (
        int(method == ex.method.upper()) + int(sha == ex.request_body_sha256),
        int(same_path),
        difflib.SequenceMatcher(None, url, ex.url).ratio(),
    )
