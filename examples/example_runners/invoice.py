"""billing.invoice: price an order, with the tax and discount decisions on record."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from pydantic import BaseModel, Field

from jobforge import RunContext, runner

TAX = {"DE": Decimal("0.19"), "FR": Decimal("0.20"), "US": Decimal("0.00")}


class Line(BaseModel):
    sku: str
    qty: int = Field(ge=1)
    unit_price: Decimal = Field(ge=0, decimal_places=2)


class InvoiceIn(BaseModel):
    customer: str
    country: Literal["DE", "FR", "US"]
    lines: list[Line] = Field(min_length=1)
    coupon: str | None = None


class InvoiceOut(BaseModel):
    number: str
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


@runner("billing.invoice", version="1.2.0", input=InvoiceIn, output=InvoiceOut,
        trace_keys=["discount_rate", "tax_rate"], artifacts=["invoice.json"])
def invoice(inp: InvoiceIn, ctx: RunContext) -> InvoiceOut:
    subtotal = sum((line.unit_price * line.qty for line in inp.lines), Decimal("0"))
    rate = Decimal("0.10") if inp.coupon == "WELCOME10" else Decimal("0")
    ctx.decide("discount_rate", str(rate), coupon=inp.coupon)
    tax_rate = ctx.decide("tax_rate", str(TAX[inp.country]), country=inp.country)
    discount = _cents(subtotal * rate)
    tax = _cents((subtotal - discount) * Decimal(tax_rate))
    number = f"INV-{ctx.now():%Y%m%d}-{ctx.uuid().hex[:8]}"
    out = InvoiceOut(number=number, subtotal=_cents(subtotal), discount=discount, tax=tax,
                     total=_cents(subtotal - discount + tax))
    ctx.artifact("invoice.json", out.model_dump(mode="json") | {"customer": inp.customer})
    return out
