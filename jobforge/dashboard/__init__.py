"""`jobforge dashboard`: a web UI over one tenant's queue, run records and replays.

Glue over the library beside `jobforge.cli`: `app.create_app` builds the ASGI app, `auth` says
who a session is, `reads` what the pages show, `figures` the chart and the diff. Needs the
`dashboard` extra (Starlette, Jinja2, uvicorn, python-multipart).
"""

from __future__ import annotations
