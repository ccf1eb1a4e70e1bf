"""Canonical JSON (RFC 8785, JCS) and `sha256:<hex>` hashes: the only place jobforge makes either.

Why RFC 8785 and not `json.dumps(sort_keys=True, separators=(",", ":"))`: the same value must give
the same bytes in every language, or a hash recorded by one tool cannot be checked by another. JCS
writes numbers as ECMAScript does (`1.0` -> `1`, `-0.0` -> `0`, `1e21` -> `1e+21`, shortest
round-trip digits) and sorts object keys by their UTF-16 code units, so a character outside the
Basic Multilingual Plane sorts where JavaScript puts it (U+1F600 before U+FB01; Python's
`sort_keys` orders by code point and puts U+FB01 first). Strings keep non-ASCII characters as
UTF-8 and escape only `"`, `\\` and the control characters below U+0020.

What a hash covers: `hash_of(value)` is SHA-256 over exactly the UTF-8 bytes of the RFC 8785
serialization of `jsonable(value)`: no trailing newline, no byte-order mark, no prefix or
envelope. It is written `sha256:` followed by 64 lowercase hex digits. So two values that convert
to the same JSON have the same hash: `1`, `1.0` and `-0.0`-vs-`0` collide on purpose (one JSON
number), while `1` and `"1"` do not.

`jsonable` decides what may enter canonical JSON. Its conversions, and why:

- `dict` (any mapping) with `str` keys -> object; `list` and `tuple` -> array; `str`, `bool`,
  `None` as they are. A non-`str` key is refused rather than stringified, since `{1: x}` and
  `{"1": x}` would otherwise collide.
- `int` -> number, when a JSON number holds it exactly: JSON numbers are IEEE doubles in JCS, so
  a larger integer would be silently rounded by every reader. That is every integer within
  +-(2**53 - 1), plus the few larger ones whose double RFC 8785 writes as the integer's own
  digits (`2**53`, `10**20`; these come back from `jsonable` as floats), so that canonical JSON
  read back with `json.loads` canonicalizes to the same bytes. `2**53 + 1`, `2**60` (written
  `1152921504606847000`) and everything from `10**21` up are refused: pass them as strings.
- `float` -> number; NaN and the infinities are refused (JSON has none).
- `datetime` -> `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` in UTC (six fraction digits, present only when the
  microseconds are non-zero), so the same instant written in different offsets hashes the same.
  A naive datetime is refused: its instant depends on the machine's zone.
- `date` -> `YYYY-MM-DD`.
- `time` -> `HH:MM:SS[.ffffff]` when naive: a wall-clock time of day ("run at 09:00"), like a
  `date`, names no instant to misplace. An aware `time` is refused: its UTC offset can depend on a
  date it does not carry (DST), so it cannot be put in UTC; pass an aware `datetime` instead.
- `Decimal` -> a JSON *string*, exact and with its scale: the General Decimal Arithmetic
  specification's to-scientific-string (what `str()` gives, what Java's `BigDecimal.toString`
  writes, and what pydantic writes for a `Decimal` field), so `Decimal("18.00")` -> `"18.00"`,
  `Decimal("1.1")` -> `"1.1"`, `Decimal("1E+2")` -> `"1E+2"`, `Decimal("0.0000001")` ->
  `"1E-7"`; the string reads back as the same sign, digits and exponent. The scale is kept
  because it means something (an amount of `18.00` is priced to the cent; `18` is not), and so
  that a Decimal decided in a trace reads as the same value in an output model. So
  `Decimal("1.10")` and `Decimal("1.1")` are different strings and hashes, on purpose. Not a
  number, because a JCS number is a double: `Decimal("0.10000000000000000001")` would become
  `0.1` and collide with `Decimal("0.1")`, and money would pick up float noise. NaN and the
  infinities are refused. (Earlier versions wrote the string normalized, `"18"` for
  `Decimal("18.00")`: a recording made then differs there from a new run, and the golden and
  replay reports say it is the same number with another scale.)
- `UUID` -> its lowercase hyphenated form; `Enum` -> its value, converted in turn.
- an object with `model_dump` (a pydantic model; duck-typed, pydantic is not imported here) ->
  `model_dump(mode="json")`, converted in turn. The model's own JSON rules win for its fields
  (pydantic keeps a datetime's offset and writes `Decimal("1.10")` as `"1.10"`), because that
  JSON is what the model validates and what is stored.
- refused with a hint: `bytes` (base64 it, or store it with `ctx.artifact()`), `set` and
  `frozenset` (no order: sort into a list), and anything else (the type is named).

Every refusal raises `errors.CanonicalError` naming the JSONPath of the offending value, e.g.
`$.items[2].when` (keys that are not identifiers are written `$["a key"]`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any

import rfc8785

from jobforge.errors import CanonicalError

__all__ = [
    "HASH_PATTERN",
    "canonical_bytes",
    "canonical_text",
    "hash_of",
    "is_hash",
    "jsonable",
    "sha256_of",
]

#: The shape of every hash jobforge writes; usable as a JSON Schema `pattern`.
HASH_PATTERN = r"^sha256:[0-9a-f]{64}$"
_HASH_RE = re.compile(r"sha256:[0-9a-f]{64}")

#: Every integer up to this size is held exactly by a JSON number (an IEEE double in RFC 8785).
_INT_LIMIT = 2**53 - 1
#: From 1e21 on, RFC 8785 writes numbers with an exponent, never as an integer's digits.
_NUMBER_TEXT_LIMIT = 10**21

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_PathPart = str | int


def jsonable(value: Any) -> Any:
    """Convert `value` to plain JSON types (dict, list, str, int, float, bool, None).

    The conversions are listed in this module's docstring. Anything else raises
    `CanonicalError` naming the path (e.g. `$.items[2].when`) and the type.
    """
    try:
        return _Converter().convert(value)
    except RecursionError:
        raise CanonicalError("value is nested too deeply to convert to JSON", path="$") from None


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 serialization of `jsonable(value)`, as UTF-8 bytes (no trailing newline)."""
    plain = jsonable(value)
    try:
        return rfc8785.dumps(plain)
    except rfc8785.CanonicalizationError as exc:  # jsonable() checks all of these first
        raise CanonicalError(f"cannot write canonical JSON: {exc}") from exc
    except RecursionError:
        raise CanonicalError("value is nested too deeply to write as JSON", path="$") from None


def plain_bytes(value: Any) -> bytes:
    """`canonical_bytes(value)` for a value that is plain JSON already (what `json.loads` or a
    jsonb column gives: dict, list, str, int, float, bool, None), without `jsonable`'s
    conversion pass: the worker's hot path (a signed job's payload, rebuilt per job). Whatever
    the serializer refuses as it stands (an integer it cannot hold exactly, a type it does not
    know) takes the full path, so the bytes are always `canonical_bytes`'s."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError):
        return canonical_bytes(value)


def canonical_text(value: Any) -> str:
    """`canonical_bytes(value)` as a `str`."""
    return canonical_bytes(value).decode("utf-8")


def sha256_of(data: bytes) -> str:
    """`sha256:<64 lowercase hex>` of exactly these bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hash_of(value: Any) -> str:
    """`sha256_of(canonical_bytes(value))`: the hash of the value's canonical JSON."""
    return sha256_of(canonical_bytes(value))


def is_hash(text: str) -> bool:
    """Whether `text` is exactly `sha256:` and 64 lowercase hex digits (no surrounding space)."""
    return isinstance(text, str) and _HASH_RE.fullmatch(text) is not None


def _format_path(parts: tuple[_PathPart, ...] | list[_PathPart]) -> str:
    """Render path parts as JSONPath: `$`, `$.a[1].b`, `$["not an identifier"]`."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.fullmatch(part):
            out.append(f".{part}")
        else:
            out.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(out)


def _type_name(value: object) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class _Converter:
    """One conversion: tracks the current path (rendered only on error) and the open containers."""

    def __init__(self) -> None:
        self._path: list[_PathPart] = []
        self._open: set[int] = set()  # ids of the containers being converted, to catch cycles

    def _fail(self, what: str, advice: str) -> CanonicalError:
        path = _format_path(self._path)
        return CanonicalError(f"{what} at {path}: {advice}", path=path)

    def convert(self, value: Any) -> Any:
        # Exact built-in types first: the common case, and cheap.
        cls = type(value)
        if value is None or cls is bool:
            return value
        if cls is str:
            return self._string(value)
        if cls is int:
            return self._integer(value)
        if cls is float:
            return self._float(value)
        if cls is dict:
            return self._mapping(value)
        if cls is list or cls is tuple:
            return self._sequence(value)
        return self._other(value)

    def _other(self, value: Any) -> Any:
        # Enum before str/int: a StrEnum or IntEnum member stands for its value.
        if isinstance(value, enum.Enum):
            return self.convert(value.value)
        if isinstance(value, str):
            return self._string(str.__str__(value))
        if isinstance(value, int):
            return self._integer(int.__index__(value))
        if isinstance(value, float):
            return self._float(float.__float__(value))
        if isinstance(value, dt.datetime):  # before date: a datetime is a date
            return self._datetime(value)
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, dt.time):
            return self._time(value)
        if isinstance(value, decimal.Decimal):
            return self._decimal(value)
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, Mapping):
            return self._mapping(value)
        if isinstance(value, list | tuple):
            return self._sequence(value)
        if isinstance(value, set | frozenset):
            raise self._fail(
                f"unordered {type(value).__name__}",
                "JSON has no sets and a set has no stable order; sort it into a list",
            )
        if isinstance(value, bytes | bytearray | memoryview):
            raise self._fail(
                type(value).__name__,
                "JSON has no bytes; encode them into a string (base64), "
                "or store them as a file with ctx.artifact()",
            )
        model_dump = getattr(value, "model_dump", None)
        if callable(model_dump) and not isinstance(value, type):
            return self._model(value, model_dump)
        raise self._fail(f"unsupported type {_type_name(value)}", _hint(value))

    def _string(self, value: str, what: str = "string") -> str:
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise self._fail(
                f"{what} holding a lone surrogate U+{ord(value[exc.start]):04X}",
                "it is not valid Unicode and has no UTF-8 form; fix how the text was decoded",
            ) from None
        return value

    def _integer(self, value: int) -> int | float:
        if -_INT_LIMIT <= value <= _INT_LIMIT:
            return value
        if -_NUMBER_TEXT_LIMIT < value < _NUMBER_TEXT_LIMIT:
            # Beyond 2**53 a double still holds some integers, e.g. 2**53 itself, and every
            # integer-valued double below 1e21 is written as plain digits. Take the integer when
            # that text is its own digits, so the text reads back as the same integer (and
            # canonical JSON parsed by `json.loads` canonicalizes to the same bytes).
            as_double = float(value)
            if rfc8785.dumps(as_double) == str(value).encode("ascii"):
                return as_double
        raise self._fail(
            f"integer {value}",
            "a JSON number is an IEEE double, which cannot hold this integer exactly "
            "(beyond +-(2**53 - 1)); pass it as a string",
        )

    def _float(self, value: float) -> float:
        if math.isfinite(value):
            return value
        raise self._fail(f"float {value!r}", "JSON has no NaN or Infinity; use null or a string")

    def _datetime(self, value: dt.datetime) -> str:
        offset = value.utcoffset()
        if offset is None:
            raise self._fail(
                "naive datetime",
                "give it a timezone (e.g. datetime.now(timezone.utc), or ctx.now())",
            )
        wall = dt.datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
        )  # a plain datetime, whatever subclass came in
        try:
            utc = wall - offset
        except OverflowError:
            raise self._fail(
                f"datetime {value.isoformat()}", "it falls outside years 1..9999 in UTC"
            ) from None
        return utc.isoformat() + "Z"

    def _time(self, value: dt.time) -> str:
        if value.tzinfo is not None:
            raise self._fail(
                "time with a timezone",
                "a time of day cannot be put in UTC without a date; pass an aware datetime, "
                "or a naive time of day",
            )
        return value.isoformat()

    def _decimal(self, value: decimal.Decimal) -> str:
        if not value.is_finite():
            raise self._fail(
                f"Decimal {value}", "JSON has no NaN or Infinity; use null or a string"
            )
        return decimal.Decimal.__str__(value)

    def _mapping(self, value: Mapping[Any, Any]) -> dict[str, Any]:
        self._enter(value)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise self._fail(
                    f"key {key!r} of type {_type_name(key)}",
                    "JSON object keys must be strings; convert the key yourself",
                )
            if type(key) is not str:  # a str subclass, e.g. a StrEnum member: its text
                key = str.__str__(key)
            self._string(key, "object key")
            self._path.append(key)
            out[key] = self.convert(item)
            self._path.pop()
        self._leave(value)
        return out

    def _sequence(self, value: list[Any] | tuple[Any, ...]) -> list[Any]:
        self._enter(value)
        out: list[Any] = []
        for index, item in enumerate(value):
            self._path.append(index)
            out.append(self.convert(item))
            self._path.pop()
        self._leave(value)
        return out

    def _model(self, value: Any, model_dump: Any) -> Any:
        self._enter(value)
        try:
            dumped = model_dump(mode="json")
        except Exception as exc:
            raise self._fail(
                f"{_type_name(value)} whose model_dump(mode='json') failed", str(exc)
            ) from exc
        result = self.convert(dumped)
        self._leave(value)
        return result

    def _enter(self, container: object) -> None:
        if id(container) in self._open:
            raise self._fail(
                f"{_type_name(container)} that contains itself", "JSON cannot hold a cycle"
            )
        self._open.add(id(container))

    def _leave(self, container: object) -> None:
        self._open.discard(id(container))


def _hint(value: object) -> str:
    if isinstance(value, dt.timedelta):
        return "convert the duration to a number (e.g. seconds) or a string yourself"
    if dataclasses.is_dataclass(value):
        return "convert it first (dataclasses.asdict), or make it a pydantic model"
    return "convert it to dict, list, str, int, float, bool or None first"
