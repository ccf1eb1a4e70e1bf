"""notify.digest: pick which alerts make today's digest, asynchronously."""

from __future__ import annotations

from pydantic import BaseModel

from jobforge import RunContext, runner


class Alert(BaseModel):
    id: str
    severity: int
    service: str


class DigestIn(BaseModel):
    alerts: list[Alert]
    max_items: int = 5


class DigestOut(BaseModel):
    items: list[str]
    services: list[str]
    sample: str | None


@runner("notify.digest", version="0.3.0", input=DigestIn, output=DigestOut,
        trace_keys=["cutoff"])
async def digest(inp: DigestIn, ctx: RunContext) -> DigestOut:
    ranked = sorted(inp.alerts, key=lambda a: (-a.severity, a.id))[: inp.max_items]
    ctx.decide("cutoff", ranked[-1].severity if ranked else None, max_items=inp.max_items)
    services = sorted({a.service for a in ranked})  # sorted: set order is not stable
    sample = ctx.random.choice(ranked).id if ranked else None  # seeded: replays the same
    return DigestOut(items=[a.id for a in ranked], services=services, sample=sample)
