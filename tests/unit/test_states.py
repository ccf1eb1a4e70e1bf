"""The transition table's own invariants."""

from __future__ import annotations

from jobforge.states import TERMINAL, TRANSITIONS, JobState, can_transition


def test_succeeded_is_final() -> None:
    assert not any(old is JobState.SUCCEEDED for old, _ in TRANSITIONS)


def test_every_terminal_state_is_reached_only_from_running_or_by_cancel() -> None:
    for old, new in TRANSITIONS:
        if new in TERMINAL:
            assert old is JobState.RUNNING or (old, new) == (JobState.QUEUED, JobState.CANCELED)


def test_terminal_states_leave_only_by_reschedule() -> None:
    for old, new in TRANSITIONS:
        if old in TERMINAL:
            assert new is JobState.QUEUED
            assert TRANSITIONS[(old, new)] == "reschedule"


def test_queued_cannot_finish_without_running() -> None:
    assert not can_transition(JobState.QUEUED, JobState.SUCCEEDED)
    assert can_transition(JobState.QUEUED, JobState.RUNNING)
