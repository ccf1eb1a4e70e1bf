"""The characters jobforge.strategies puts in payload strings are ones Postgres stores."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from jobforge.strategies import _STORABLE


@settings(max_examples=2000, database=None)
@given(st.text(_STORABLE, max_size=20))
def test_no_nul_and_no_lone_surrogate(text: str) -> None:
    assert "\x00" not in text
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    text.encode("utf-8")  # a lone surrogate would raise here
