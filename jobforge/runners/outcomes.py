"""How the first-party runners end an attempt on an HTTP answer or a network error: a class of
status is retried (the queue's backoff, the runner's retry policy) or ends the job failed.

- 2xx (and a status the job lists as expected): the attempt succeeds.
- 429, 5xx, a timeout, a refused or reset connection: `Retryable`, another attempt follows.
- any other 4xx (and 3xx when redirects are not followed): `Rejected`, the job fails at once:
  the same request would get the same answer.
- the SSRF guard's refusal, a response over the size cap, too many redirects: failed at once.

The guard's refusal ends with advice naming the front end that ran it (``pass --http-allow-host
... to jobforge worker``, ``... to jobforge certify``); `refused` moves that advice into the
error's details, so the message, which golden cases and replay compare, is the same wherever
the run happens.
"""

from __future__ import annotations

import httpx

from jobforge import errors


class Retryable(errors.JobforgeError):
    """An answer or a network error another attempt may not get: the job is retried."""


class Rejected(errors.NonRetryable):
    """An answer another attempt would get again: the job fails without retry."""


def retried(status: int) -> bool:
    """Whether an answer with `status` is worth another attempt (429 and 5xx)."""
    return status == 429 or 500 <= status <= 599


def network_error(exc: httpx.RequestError, what: str) -> errors.JobforgeError:
    """The error an attempt ends with when `what` got no answer: too many redirects fails the
    job; a timeout, a refused or reset connection (any other transport error) is retried."""
    if isinstance(exc, httpx.TooManyRedirects):
        return Rejected(f"{what}: {exc}")
    kind = type(exc).__name__
    return Retryable(f"{what}: no answer ({kind}: {str(exc)[:300] or 'no detail'})")


#: Where the guard's refusal turns from the reason to the advice (`HttpPolicy.allow_advice`).
_ADVICE = "; if this is intended, "


def refused(exc: errors.HttpRefused) -> errors.HttpRefused:
    """The guard's refusal with the front end's advice moved from the message to the details."""
    reason, _, advice = str(exc).partition(_ADVICE)
    return errors.HttpRefused(reason, details={"advice": advice} if advice else None)
