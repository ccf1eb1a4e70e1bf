"""Two long values that differ are shown where they differ, not as their (equal) beginnings."""

from __future__ import annotations

from jobforge.golden.compare import Difference
from jobforge.golden.explain import Divergence, pair

ROWS = [f"invoice-{i:04d}" for i in range(40)]


def test_a_nondeterminism_far_into_a_long_value_is_shown() -> None:
    first = {"rows": ROWS, "generated_at": "2024-05-01T10:00:00.000001"}
    other = {"rows": ROWS, "generated_at": "2024-05-01T10:00:03.418277"}
    text = Divergence("output", first, other, "a timestamp").render()
    assert "10:00:00.000001" in text
    assert "10:00:03.418277" in text
    assert "…(from char " in text  # the common beginning is left out, and said to be


def test_an_expectation_that_differs_far_into_a_long_value_shows_the_difference() -> None:
    report = "# Late fees\n" + "".join(f"- {row}: 5.00\n" for row in ROWS)
    text = Difference("output.report", report + "total: 200.00\n", report + "total: 205.00\n")
    rendered = text.render()
    assert "total: 200.00" in rendered
    assert "total: 205.00" in rendered


def test_the_window_starts_a_little_before_the_first_difference_on_both_sides() -> None:
    a = "x" * 500 + "A" + "y" * 500
    b = "x" * 500 + "B" + "y" * 500
    left, right = pair(a, b, limit=60, before=10)
    # repr adds a quote: the difference is character 501, the window starts 10 before it
    assert left == "…(from char 491) " + "x" * 10 + "A" + "y" * 49 + "…"
    assert right == "…(from char 491) " + "x" * 10 + "B" + "y" * 49 + "…"


def test_a_value_that_stops_early_shows_where_the_other_goes_on() -> None:
    left, right = pair("z" * 300, "z" * 200, limit=60, before=10)
    assert right.endswith("z'")
    assert left.endswith("…")
    assert left.startswith("…(from char 191) ")


def test_short_values_are_shown_whole() -> None:
    assert pair("a", "b") == ("'a'", "'b'")
    assert pair(1, 2.5) == ("1", "2.5")


def test_a_difference_at_the_start_of_long_values_is_a_plain_prefix() -> None:
    left, right = pair("a" + "q" * 300, "b" + "q" * 300, limit=50)
    assert left == "'a" + "q" * 48 + "…"
    assert right == "'b" + "q" * 48 + "…"
