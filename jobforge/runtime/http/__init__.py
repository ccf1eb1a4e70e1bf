"""`ctx.http`: the recorded HTTP client a runner uses for outside I/O (DESIGN §3).

In ``record`` mode every request really goes out (through httpx) behind an SSRF guard, and each
request/response pair is kept as an `Exchange`; in ``replay`` mode the same calls are answered
from those exchanges and the network (DNS included) is never touched. Both modes share one code
path for building requests and following redirects, so a run hands out the same responses when
it is replayed.

Decisions worth knowing:

- **Guard.** The host is resolved with `socket.getaddrinfo` (numeric hosts too) and refused when
  *any* address is loopback, private, link-local, reserved, multicast, unspecified, not globally
  routable, or an IPv4-mapped / 6to4 / NAT64 IPv6 address whose embedded IPv4 is any of those;
  hosts in `HttpPolicy.allow_hosts` (exact, case-insensitive) skip the guard. The connection is
  pinned to the checked address (the URL is rewritten to the IP, the Host header keeps the name,
  and for https the ``sni_hostname`` extension keeps certificate checks on the name), so a second
  DNS answer cannot redirect it (DNS rebinding). Connection pools are kept per host name, so a
  TLS connection verified for one name is never reused for another name on the same address.
  Environment proxies are ignored (they would bypass the pinning).
- **Redirects** are followed here, not by httpx, with the guard re-run on every hop, up to
  `HttpPolicy.max_redirects` (then `httpx.TooManyRedirects`). *Every hop is recorded* as its own
  exchange; replay follows the recorded hops with the same rules, so the final response, its
  ``url`` and its ``history`` come out the same. A hop refused by the guard is not an exchange
  (nothing was sent).
- **Replay and the guard.** Replay serves a request it finds a recorded exchange for whatever the
  guard would say of its host: no socket is opened, and the worker that recorded it had the host
  allowed (``jobforge worker --http-allow-host``), so the guard, which exists to stop live calls,
  has nothing to protect (and a replay needs no copy of the worker's flags). A request with no
  recorded exchange is re-checked offline when its host is a literal IP, so a refusal the
  recording run saw is raised again (`HttpRefused`); a refused host *name* (which replay cannot
  resolve) surfaces as `UnrecordedRequest`. The refusal says how to allow the host in the front
  end that runs it (`HttpPolicy.allow_hint`).
- **What is recorded.** Header names are lowercased and repeated headers joined with ``", "``.
  Request headers are those sent (jobforge sends a fixed ``user-agent: jobforge``, ``accept`` and
  ``accept-encoding``, so recordings do not depend on the installed httpx). The response body is
  stored decoded (``content-encoding`` is dropped, ``content-length`` fixed up, and
  ``transfer-encoding`` dropped since the body is stored whole), as UTF-8 text when it decodes
  strictly, else base64. The ``date`` response header is dropped: no timestamp or duration
  enters an `Exchange` (and ``Response.elapsed`` is unavailable). Credentials in the URL
  (``user:pass@``) are moved to an ``Authorization: Basic`` header, so they are redacted.
- **Redaction.** Headers matching `HttpPolicy.redact_headers` (case-insensitive `fnmatch`
  patterns, e.g. ``*token*``) are stored as ``"[redacted]"``, in requests and responses. So are
  the values of URL query parameters matching `HttpPolicy.redact_params` (``?api_key=…``,
  presigned-URL signatures), and of ``name=value`` pairs in a fragment: the stored URL has
  ``%5Bredacted%5D`` there, every other byte of it as sent (the ``location``,
  ``content-location`` and ``referer`` headers are stored redacted the same way), and replay
  matches a request by its URL redacted the same way (recorded URLs too, so recordings made
  before a pattern was added still match). The real value is still sent, and in record mode
  the handler sees the real value of a redacted response header (a session cookie stays
  usable); replay hands out ``"[redacted]"`` for it. Everything else a handler sees is rebuilt
  from the exchange, identically in both modes.
- **Bodies.** A request body is never stored, only its SHA-256, taken over the body with the
  values of its secret fields blanked (JSON keys at any depth and form fields whose names
  `jobforge.runtime.redact` deems secret, all replaced by ``"[redacted]"``), so the hash gives no
  password away to a dictionary. Response bodies are kept whole in memory (and in the in-memory
  copy a run is compared on); `redact_exchange` masks their secret fields on the way to a run
  record, bundle or golden file. Replay therefore serves the redaction *marker* in place of such
  a value (``{"access_token": "[redacted:…]"}``): a runner that sends it back (in a header, a
  URL query value or a body field the rules above cover) still matches the recording, since
  both sides are compared redacted, and a marker is never masked again, so an output that
  carries it compares equal with the recording.
- **Size.** A response body is read as it streams, decoded, up to `HttpPolicy.max_response_bytes`
  (10 MiB by default): a larger Content-Length is refused before anything is read, and a body
  without one is stopped once it passes the limit (`HttpResponseTooLarge`, nothing recorded).
  Replay serves recorded bodies without checking the limit.
- **Replay matching** is by (method, URL with params applied, SHA-256 of the request body with
  its secrets blanked; for recordings made before, the hash of the body as sent);
  identical requests are served in recorded order; request headers are not matched.

Where each part lives: `exchange` (the recorded exchange and its JSON form), `policy`
(`HttpPolicy`), `redaction` (what of an exchange is kept out of storage), `guard` (the SSRF
guard and address pinning), `messages` (httpx messages to exchange fields and back),
`redirects` (following them hop by hop), `matching` (replay) and `client` (`RecordedHttp`).
"""

from __future__ import annotations

from jobforge.runtime.http.client import RecordedHttp
from jobforge.runtime.http.exchange import Exchange
from jobforge.runtime.http.policy import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_REDACT,
    DEFAULT_REDACT_PARAMS,
    HttpPolicy,
)
from jobforge.runtime.http.redaction import REDACTED, redact_exchange

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_REDACT",
    "DEFAULT_REDACT_PARAMS",
    "REDACTED",
    "Exchange",
    "HttpPolicy",
    "RecordedHttp",
    "redact_exchange",
]
