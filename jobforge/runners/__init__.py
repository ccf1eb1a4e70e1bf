"""jobforge's first-party runners: ordinary `@runner` users, certified in this repository the way
users certify theirs (locks in the top-level `contracts/`, golden cases in `golden/`, replay
bundles in `bundles/`; `jobforge certify` at the repository root).

- `jobforge.runners.http` — ``jobforge.http.request``: one HTTP request through ``ctx.http``
  (the SSRF guard, redaction, recording), a per-job host allow-list, a response size cap, and
  retries by status class.
- `jobforge.runners.webhook` — ``jobforge.webhook.deliver``: a signed delivery (Standard
  Webhooks), retried on a non-2xx answer or a network error, never on 410.
- `jobforge.runners.report` — ``jobforge.report.generate``: job analytics of a window as JSON,
  CSV and Markdown, computed from the rows in its input, so a run is exact.

Import a module to declare its runner (``jobforge worker --runners jobforge.runners.webhook``);
importing this package declares none.
"""

from __future__ import annotations

#: The first-party runners by id, and the module that declares each (for a hint when a runner
#: repository enqueues one it does not declare).
MODULES: dict[str, str] = {
    "jobforge.http.request": "jobforge.runners.http",
    "jobforge.webhook.deliver": "jobforge.runners.webhook",
    "jobforge.report.generate": "jobforge.runners.report",
}
