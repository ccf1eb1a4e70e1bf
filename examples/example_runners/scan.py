"""ops.scan: find idle cloud resources and what removing them would save."""

from __future__ import annotations

from pydantic import BaseModel, Field

from jobforge import RunContext, runner


class Resource(BaseModel):
    id: str
    kind: str
    monthly_usd: float = Field(ge=0)
    utilization: float = Field(ge=0, le=1)


class ScanIn(BaseModel):
    target: str
    resources: list[Resource]
    threshold: float = Field(default=0.2, ge=0, le=1)


class ScanOut(BaseModel):
    findings: list[str]
    savings_usd: float


@runner("ops.scan", version="1.0.0", input=ScanIn, output=ScanOut,
        trace_keys=["threshold", "idle"], artifacts=["report.md"], timeout_s=60)
def scan(inp: ScanIn, ctx: RunContext) -> ScanOut:
    threshold = ctx.decide("threshold", inp.threshold, reason="taken from input")
    idle = sorted(r.id for r in inp.resources if r.utilization < threshold)
    ctx.decide("idle", idle, rule=f"utilization < {threshold}", scanned=len(inp.resources))
    savings = round(sum(r.monthly_usd for r in inp.resources if r.id in idle), 2)
    lines = [f"# Scan of {inp.target}", f"at {ctx.now().isoformat()}", ""]
    lines += [f"- {rid}: idle" for rid in idle] or ["nothing idle"]
    ctx.artifact("report.md", "\n".join(lines) + "\n")
    return ScanOut(findings=idle, savings_usd=savings)
