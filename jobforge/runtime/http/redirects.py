"""Following redirects by hand (httpx is told not to), so the guard runs on every hop and replay
follows the recorded hops with the same rules: the next hop's method, URL, headers and body.
"""

from __future__ import annotations

import httpx

from jobforge.errors import HttpRefused
from jobforge.runtime.http.policy import HttpPolicy, _shown

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def _redirect(
    request: httpx.Request, response: httpx.Response, hops: int, policy: HttpPolicy
) -> httpx.Request | None:
    """The next hop's request, None when `response` is final; TooManyRedirects past the limit."""
    location = response.headers.get("location")
    if response.status_code not in _REDIRECT_STATUSES or location is None:
        return None
    if hops >= policy.max_redirects:
        raise httpx.TooManyRedirects(
            f"{request.method} {_shown(request.url, policy)} answered {response.status_code} "
            f"(Location: {_shown(location, policy)}) after {hops} redirect(s); "
            "HttpPolicy.max_redirects is "
            f"{policy.max_redirects}",
            request=request,
        )
    try:
        url = request.url.join(location)
    except httpx.InvalidURL as exc:
        raise HttpRefused(
            f"refused redirect from {_shown(request.url, policy)} to "
            f"{_shown(location, policy)!r}: {exc}"
        ) from None
    if url.fragment == "" and request.url.fragment:
        url = url.copy_with(fragment=request.url.fragment)
    method = request.method
    if (response.status_code == 303 and method != "HEAD") or (
        response.status_code in (301, 302) and method == "POST"
    ):
        method = "GET"
    headers = httpx.Headers(request.headers)
    headers.pop("host", None)
    headers.pop("cookie", None)
    same_origin = (url.scheme, url.host, url.port) == (
        request.url.scheme,
        request.url.host,
        request.url.port,
    )
    if not same_origin:  # nothing secret goes to another origin: every redacted header drops
        for name in [n for n in headers if n.lower() == "authorization" or policy.redacts(n)]:
            headers.pop(name, None)
    content: bytes | None = request.content
    if method != request.method:
        content = None
        for name in ("content-length", "content-type", "transfer-encoding"):
            headers.pop(name, None)
    return httpx.Request(method, url, headers=headers, content=content)
