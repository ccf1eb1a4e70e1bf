"""Canonical JSON (RFC 8785) and hashing: pinned vectors, conversions, refusals, properties.

Every pinned canonical string and hash below was computed independently with Node 20
(`JSON.stringify` of the leaves, keys sorted by JavaScript's default UTF-16 order, then SHA-256 of
the UTF-8 text); the first seven come from seeds-deep §6.7.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import random
import struct
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from jobforge.canonical import (
    HASH_PATTERN,
    canonical_bytes,
    canonical_text,
    hash_of,
    is_hash,
    jsonable,
    sha256_of,
)
from jobforge.errors import CanonicalError, JobforgeError

# --- pinned vectors ---------------------------------------------------------------------------

VECTORS: list[tuple[str, Any, str, str]] = [
    (
        "null",
        None,
        "null",
        "74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b",
    ),
    (
        "empty object",
        {},
        "{}",
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    ),
    (
        "nested keys sorted",
        {"z": 1, "a": {"c": 2, "b": 1}},
        '{"a":{"b":1,"c":2},"z":1}',
        "07a4adccf0b3c468c0d6f76a9962488a1dbda480e91375a491782b9ef398480a",
    ),
    (
        "boolean",
        {"success": True},
        '{"success":true}',
        "c955e57777ec0d73639dca6748560d00aa5eb8e12f13ebb2ed9656add3908f97",
    ),
    (
        "string",
        "done",
        '"done"',
        "58bf5b5478e5d1fb7441daeff9fd1ed60a4ad5fbfabc64715cd8608f3f59f6da",
    ),
    (
        "numbers as ECMAScript writes them",
        {"a": 1.0, "b": 0.1, "c": 1e21, "d": -0.0},
        '{"a":1,"b":0.1,"c":1e+21,"d":0}',
        "73899700c53f4879f7639261b9710274f342bfed16fef213531e42e24e2a2a31",
    ),
    (
        "keys in UTF-16 order (U+1F600 before U+FB01)",
        {"\ufb01": 1, "\U0001f600": 2},
        '{"\U0001f600":2,"\ufb01":1}',
        "14dc6c14e11d686bbd1332452e5c8dc999ac1479def9c87e945308b1b27d469b",
    ),
    (
        "nesting",
        {"b": [1, {"d": [], "c": {}}], "a": [[[]]]},
        '{"a":[[[]]],"b":[1,{"c":{},"d":[]}]}',
        "91973b499c6804ddc7cb59d8f862629c9a4ec9f7c4060a2516cefe008a920e46",
    ),
    (
        "escapes: only quote, backslash and controls; non-ASCII stays UTF-8",
        {"s": '\u001f"\\\n\t\b\f\r/\u00e9\u007f\u2028\U0001f600'},
        '{"s":"\\u001f\\"\\\\\\n\\t\\b\\f\\r/\u00e9\u007f\u2028\U0001f600"}',
        "68a475b104a139c913d429584365127b9973c2789fbe31a73ad5180db5726752",
    ),
    (
        "integers at the edge of the safe range, and floats",
        [2**53 - 1, -(2**53 - 1), 1e300, 2.0**53, 0.000001, 1e-7, 123456789012345680000.0],
        "[9007199254740991,-9007199254740991,1e+300,9007199254740992,0.000001,1e-7,"
        "123456789012345680000]",
        "c1143d46d76bf763f606a42f97e3e04f5a7942547be7660f18f58c16d9b09f8a",
    ),
]


@pytest.mark.parametrize(
    ("value", "text", "digest"), [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS]
)
def test_pinned_vector(value: Any, text: str, digest: str) -> None:
    assert canonical_text(value) == text
    assert canonical_bytes(value) == text.encode("utf-8")
    assert hash_of(value) == f"sha256:{digest}"


def test_python_sort_keys_would_get_the_non_bmp_vector_wrong() -> None:
    """The reason for RFC 8785: code-point order puts U+FB01 first, a different hash."""
    value = {"\ufb01": 1, "\U0001f600": 2}
    python = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert python == '{"\ufb01":1,"\U0001f600":2}'
    assert sha256_of(python.encode()) != hash_of(value)


def test_escaped_text_is_exactly_these_bytes() -> None:
    assert canonical_bytes(["\u00e9\u007f\U0001f600\u0000"]) == (
        b'["\xc3\xa9\x7f\xf0\x9f\x98\x80\\u0000"]'
    )


# RFC 8785 Appendix B: IEEE 754 bit patterns and their JCS number text (checked against Node 20).
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "text"), RFC8785_NUMBERS)
def test_rfc8785_number_vector(bits: str, text: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_text(number) == text


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (2**53 - 1, "9007199254740991"),
        (2**53, "9007199254740992"),
        (-(2**53), "-9007199254740992"),
        (2**53 + 2, "9007199254740994"),
        (10**20, "100000000000000000000"),
        (1152921504606847000, "1152921504606847000"),  # the text JCS gives the double 2**60
        (999999999999999900000, "999999999999999900000"),
    ],
)
def test_integers_a_double_writes_as_their_own_digits_are_numbers(number: int, text: str) -> None:
    assert canonical_text(number) == text
    assert json.loads(text) == number


def test_integer_valued_doubles_read_back_with_json_loads_stay_canonical() -> None:
    for number in [2.0**53, 2.0**60, 1e20, 123456789012345680000.0]:
        once = canonical_bytes(number)
        assert isinstance(json.loads(once), int)
        assert canonical_bytes(json.loads(once)) == once


# --- hashing ----------------------------------------------------------------------------------


def test_sha256_of_covers_exactly_the_bytes() -> None:
    empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_of(b"") == empty
    assert sha256_of(b"null") == f"sha256:{VECTORS[0][3]}"
    assert sha256_of(b"null\n") != sha256_of(b"null")


def test_hash_of_is_sha256_of_canonical_bytes_without_newline() -> None:
    value = {"b": [1, 2.5, None], "a": "x"}
    assert canonical_bytes(value) == b'{"a":"x","b":[1,2.5,null]}'
    assert hash_of(value) == sha256_of(canonical_bytes(value))
    assert is_hash(hash_of(value))


def test_equal_json_values_share_a_hash_and_different_types_do_not() -> None:
    assert hash_of(1) == hash_of(1.0) == hash_of(True and 1)
    assert hash_of(0.0) == hash_of(-0.0) == hash_of(0)
    assert hash_of(1) != hash_of("1")
    assert hash_of(True) != hash_of(1)
    assert hash_of([1, 2]) == hash_of((1, 2))


GOOD_HASH = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD_HASH, True),
        (hash_of(None), True),
        (GOOD_HASH + "\n", False),
        (" " + GOOD_HASH, False),
        (GOOD_HASH.upper(), False),
        ("sha256:" + "0123456789ABCDEF" * 4, False),
        (GOOD_HASH[:-1], False),
        (GOOD_HASH + "0", False),
        ("sha256:" + "g" * 64, False),
        ("sha512:" + "0" * 64, False),
        ("0" * 64, False),
        ("sha256:", False),
        ("", False),
    ],
)
def test_is_hash(text: str, expected: bool) -> None:
    assert is_hash(text) is expected


def test_hash_pattern_is_the_is_hash_rule_for_json_schemas() -> None:
    assert HASH_PATTERN == "^sha256:[0-9a-f]{64}$"


# --- conversions ------------------------------------------------------------------------------

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def test_aware_datetime_is_written_in_utc_with_z() -> None:
    when = dt.datetime(2024, 1, 1, 3, 0, tzinfo=IST)
    assert jsonable(when) == "2023-12-31T21:30:00Z"
    assert hash_of(when) == hash_of(when.astimezone(dt.UTC))


def test_datetime_microseconds_only_when_non_zero() -> None:
    assert jsonable(dt.datetime(2024, 5, 6, 7, 8, 9, 500, tzinfo=dt.UTC)) == (
        "2024-05-06T07:08:09.000500Z"
    )
    assert jsonable(dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)) == "2024-05-06T07:08:09Z"


def test_naive_datetime_is_refused_with_its_path() -> None:
    with pytest.raises(
        CanonicalError, match=r"naive datetime at \$\.a\[1\]\.b: give it a timezone"
    ):
        jsonable({"a": [0, {"b": dt.datetime(2024, 1, 1)}]})


def test_datetime_that_leaves_the_calendar_in_utc_is_refused() -> None:
    with pytest.raises(CanonicalError, match=r"at \$: it falls outside years 1\.\.9999"):
        jsonable(dt.datetime(1, 1, 1, tzinfo=IST))


def test_date_and_naive_time() -> None:
    assert jsonable([dt.date(2024, 2, 29), dt.time(9, 0), dt.time(9, 0, 0, 250)]) == [
        "2024-02-29",
        "09:00:00",
        "09:00:00.000250",
    ]


def test_aware_time_is_refused() -> None:
    with pytest.raises(CanonicalError, match=r"time with a timezone at \$\.at: .*aware datetime"):
        jsonable({"at": dt.time(9, 0, tzinfo=dt.UTC)})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.10", "1.10"),
        ("1.1", "1.1"),
        ("18.00", "18.00"),
        ("-0", "-0"),
        ("0.000", "0.000"),
        ("0E+5", "0E+5"),
        ("100", "100"),
        ("1E+2", "1E+2"),
        ("-123.4500", "-123.4500"),
        ("0.000001", "0.000001"),
        ("0.0000001", "1E-7"),
        ("1E+20", "1E+20"),
        ("1E+21", "1E+21"),
        ("-1.5E-10", "-1.5E-10"),
        # more digits than the default 28-digit context: kept exactly, never rounded
        ("1.00000000000000000000000000000001", "1.00000000000000000000000000000001"),
        ("0.10000000000000000001", "0.10000000000000000001"),
    ],
)
def test_decimal_is_an_exact_string_with_its_scale(text: str, expected: str) -> None:
    assert jsonable(decimal.Decimal(text)) == expected


def test_decimal_does_not_collide_with_its_nearest_double() -> None:
    assert hash_of(decimal.Decimal("0.10000000000000000001")) != hash_of(decimal.Decimal("0.1"))
    assert hash_of(decimal.Decimal("1.10")) != hash_of(decimal.Decimal("1.1"))  # scale kept


@pytest.mark.parametrize("text", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_non_finite_decimal_is_refused(text: str) -> None:
    with pytest.raises(CanonicalError, match=r"Decimal .* at \$\.x\[0\]: JSON has no NaN"):
        jsonable({"x": [decimal.Decimal(text)]})


def test_uuid_is_lowercase() -> None:
    assert jsonable(uuid.UUID("12345678-ABCD-5678-9ABC-DEF012345678")) == (
        "12345678-abcd-5678-9abc-def012345678"
    )


class Color(enum.Enum):
    RED = "red"
    PAIR = (1, dt.date(2024, 1, 2))


class Level(enum.IntEnum):
    HIGH = 3


class Kind(enum.StrEnum):
    SCAN = "scan"


def test_enum_becomes_its_value_converted() -> None:
    assert jsonable([Color.RED, Color.PAIR, Level.HIGH, Kind.SCAN]) == [
        "red",
        [1, "2024-01-02"],
        3,
        "scan",
    ]
    assert type(jsonable(Level.HIGH)) is int
    assert type(jsonable(Kind.SCAN)) is str
    assert canonical_text({Kind.SCAN: Level.HIGH}) == '{"scan":3}'


class Inner(BaseModel):
    when: dt.datetime
    amount: decimal.Decimal


class Outer(BaseModel):
    name: str
    inner: list[Inner]
    extra: dict[str, Any] = {}


def test_pydantic_model_goes_through_its_json_dump() -> None:
    model = Outer(
        name="x",
        inner=[Inner(when=dt.datetime(2024, 1, 1, tzinfo=IST), amount=decimal.Decimal("1.10"))],
    )
    # pydantic's own JSON rules apply inside a model: offset kept, Decimal as written
    assert jsonable({"m": model}) == {
        "m": {
            "name": "x",
            "inner": [{"when": "2024-01-01T00:00:00+05:30", "amount": "1.10"}],
            "extra": {},
        }
    }
    assert hash_of(model) == hash_of(model.model_dump(mode="json"))


def test_pydantic_model_dump_failure_names_the_path() -> None:
    model = Outer(name="x", inner=[], extra={"blob": object()})
    with pytest.raises(
        CanonicalError, match=r"Outer whose model_dump\(mode='json'\) failed at \$\.r"
    ):
        jsonable({"r": model})


def test_a_model_class_is_not_a_model() -> None:
    with pytest.raises(CanonicalError, match=r"unsupported type .*ModelMetaclass at \$"):
        jsonable(Outer)


def test_subclasses_of_plain_types_become_plain() -> None:
    class Name(str):
        def __str__(self) -> str:
            return "not me"

    class Count(int):
        pass

    out = jsonable({Name("k"): [Name("v"), Count(4)]})
    assert out == {"k": ["v", 4]}
    assert type(next(iter(out))) is str
    assert type(out["k"][0]) is str
    assert type(out["k"][1]) is int


def test_jsonable_returns_fresh_plain_containers() -> None:
    source: dict[str, Any] = {"a": (1, [2])}
    out = jsonable(source)
    assert out == {"a": [1, [2]]}
    assert out is not source
    assert out["a"][1] is not source["a"][1]


# --- refusals ---------------------------------------------------------------------------------


class Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"tags": {"b", "a"}}, r"unordered set at \$\.tags: .*sort it into a list"),
        ({"tags": frozenset({1})}, r"unordered frozenset at \$\.tags: .*sort it into a list"),
        ({"blob": [b"\x00"]}, r"bytes at \$\.blob\[0\]: .*base64.*ctx\.artifact\(\)"),
        ({"blob": bytearray(b"x")}, r"bytearray at \$\.blob: .*base64"),
        ([Opaque()], r"unsupported type .*Opaque at \$\[0\]"),
        ({"x": dt.timedelta(seconds=1)}, r"unsupported type datetime\.timedelta at \$\.x"),
        ({"x": [1, float("nan")]}, r"float nan at \$\.x\[1\]: JSON has no NaN or Infinity"),
        ({"x": float("inf")}, r"float inf at \$\.x: JSON has no NaN or Infinity"),
        ({"x": float("-inf")}, r"float -inf at \$\.x: JSON has no NaN or Infinity"),
        ({"a": {1: "x"}}, r"key 1 of type int at \$\.a: JSON object keys must be strings"),
        ({"a": {None: "x"}}, r"key None of type NoneType at \$\.a: JSON object keys must be"),
        ({("t",): 1}, r"key \('t',\) of type tuple at \$: JSON object keys must be strings"),
        ({"n": 2**53 + 1}, r"integer 9007199254740993 at \$\.n: .*pass it as a string"),
        ({"n": -(2**53 + 1)}, r"integer -9007199254740993 at \$\.n"),
        ({"n": 2**60}, r"integer 1152921504606846976 at \$\.n"),
        ({"n": [Level.HIGH, 10**21]}, r"integer 10{21} at \$\.n\[1\]"),
        ({"s": ["ok", "bad\ud800"]}, r"string holding a lone surrogate U\+D800 at \$\.s\[1\]"),
        ({"\udfff": 1}, r"object key holding a lone surrogate U\+DFFF at \$: "),
        ({"a key": {"b-c": [{"d": set()}]}}, r'set at \$\["a key"\]\["b-c"\]\[0\]\.d: '),
    ],
)
def test_refused_with_path(value: Any, message: str) -> None:
    with pytest.raises(CanonicalError, match=message) as caught:
        canonical_bytes(value)
    assert caught.value.path is not None
    assert f" at {caught.value.path}: " in str(caught.value)


def test_canonical_error_is_a_jobforge_error_with_exit_code_1() -> None:
    with pytest.raises(JobforgeError) as caught:
        hash_of({1, 2})
    assert isinstance(caught.value, CanonicalError)
    assert caught.value.exit_code == 1
    assert caught.value.path == "$"


def test_cycle_is_refused() -> None:
    loop: list[Any] = [1]
    loop.append({"again": loop})
    with pytest.raises(CanonicalError, match=r"list that contains itself at \$\[1\]\.again"):
        jsonable(loop)


def test_shared_but_acyclic_values_are_fine() -> None:
    shared = [1]
    assert canonical_text({"a": shared, "b": shared}) == '{"a":[1],"b":[1]}'


def test_too_deep_is_a_canonical_error() -> None:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(CanonicalError, match="nested too deeply"):
        canonical_bytes(deep)


# --- properties -------------------------------------------------------------------------------

SAFE_INT = st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
JSON_LIKE = st.recursive(
    st.none() | st.booleans() | SAFE_INT | FINITE | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=25,
)


def _reordered(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _reordered(item, rng) for key, item in items}
    if isinstance(value, list):
        return [_reordered(item, rng) for item in value]
    return value


@given(JSON_LIKE)
def test_canonical_bytes_is_a_fixed_point_of_a_json_round_trip(value: Any) -> None:
    once = canonical_bytes(value)
    assert canonical_bytes(json.loads(once)) == once
    # and nothing was lost: read as IEEE doubles (what a JCS number is), every number comes back
    assert json.loads(once, parse_int=float) == value


@given(JSON_LIKE, st.randoms(use_true_random=False))
def test_key_order_of_input_dicts_does_not_change_the_bytes(value: Any, rng: random.Random) -> None:
    assert canonical_bytes(_reordered(value, rng)) == canonical_bytes(value)


def _utf16_units(text: str) -> list[int]:
    units: list[int] = []
    for char in text:
        point = ord(char)
        if point < 0x10000:
            units.append(point)
        else:
            point -= 0x10000
            units += [0xD800 + (point >> 10), 0xDC00 + (point & 0x3FF)]
    return units


@given(st.dictionaries(st.text(), st.integers(0, 9), max_size=8))
def test_keys_come_out_in_utf16_code_unit_order(value: dict[str, int]) -> None:
    out = json.loads(canonical_text(value), object_pairs_hook=list)
    assert [key for key, _ in out] == sorted(value, key=_utf16_units)


BMP_TEXT = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]))
NO_FLOATS = st.recursive(
    st.none() | st.booleans() | SAFE_INT | BMP_TEXT,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(BMP_TEXT, children, max_size=5)
    ),
    max_leaves=25,
)


@given(NO_FLOATS)
def test_without_floats_or_non_bmp_keys_it_matches_compact_sorted_json(value: Any) -> None:
    """An independent oracle: there, code-point order equals UTF-16 order."""
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_text(value) == expected
