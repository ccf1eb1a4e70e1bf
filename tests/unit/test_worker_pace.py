"""The adaptive prefetch (`jobforge.worker.pace`): as many ahead as the slots until jobs finish
fast, then what 0.1 s of them take, within the caps; old finishes are forgotten."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jobforge.worker.pace import MOST, PER_SLOT, WINDOW_S, Pace


def paced(finishes: int, at: float = 100.0) -> Pace:
    pace = Pace()
    for n in range(finishes):
        pace.finished(at - WINDOW_S * n / max(finishes, 1) / 2)
    return pace


def test_before_any_finish_it_holds_as_many_as_the_slots() -> None:
    assert Pace().ahead(10, 100.0) == 10


def test_fast_jobs_raise_it_to_a_tenth_of_a_seconds_worth_within_the_caps() -> None:
    # 1,000 finishes in the last half second: 2,000 a second, 200 in 0.1 s
    assert paced(1000).ahead(32, 100.0) == 200
    assert paced(1000).ahead(10, 100.0) == PER_SLOT * 10  # per-slot cap
    assert paced(5000).ahead(100, 100.0) == MOST  # overall cap


def test_slow_jobs_keep_the_slots_number_and_old_finishes_are_forgotten() -> None:
    assert paced(3).ahead(8, 100.0) == 8
    assert paced(1000).ahead(32, 100.0 + WINDOW_S + 0.01) == 32


@given(st.integers(0, 20_000), st.integers(2, 1000))
def test_it_stays_between_the_slots_and_the_caps(finishes: int, slots: int) -> None:
    ahead = paced(finishes).ahead(slots, 100.0)
    assert slots <= ahead <= max(slots, min(PER_SLOT * slots, MOST))
