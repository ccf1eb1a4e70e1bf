"""The collector's pace while a worker runs (`jobforge.worker.gcpace`): applied inside, undone
after, by the outermost of nested workers, and never for a process that turned it off."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from jobforge.worker import gcpace


@pytest.fixture(autouse=True)
def collector() -> Iterator[tuple[int, int, int]]:
    """Each test starts from the default thresholds and a running collector, and leaves them."""
    saved, enabled = gc.get_threshold(), gc.isenabled()
    gc.set_threshold(700, 10, 10)
    gc.enable()
    yield gc.get_threshold()
    gc.set_threshold(*saved)
    (gc.enable if enabled else gc.disable)()


def test_inside_the_young_threshold_is_raised_and_startup_objects_are_frozen() -> None:
    with gcpace.paced():
        assert gc.get_threshold() == (gcpace.YOUNG_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_a_higher_threshold_the_process_chose_is_kept_and_restored() -> None:
    gc.set_threshold(50_000, 20, 30)
    with gcpace.paced():
        assert gc.get_threshold() == (50_000, 20, 30)
    assert gc.get_threshold() == (50_000, 20, 30)


def test_nested_workers_undo_it_only_when_the_outermost_stops() -> None:
    with gcpace.paced():
        with gcpace.paced():
            assert gc.get_threshold()[0] == gcpace.YOUNG_THRESHOLD
        assert gc.get_threshold()[0] == gcpace.YOUNG_THRESHOLD  # the outer worker still runs
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_an_error_inside_still_undoes_it() -> None:
    with pytest.raises(RuntimeError), gcpace.paced():
        raise RuntimeError("the worker failed")
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_disabled_it_leaves_the_collector_alone() -> None:
    with gcpace.paced(False):
        assert gc.get_threshold() == (700, 10, 10)
        assert gc.get_freeze_count() == 0


def test_a_process_that_turned_the_collector_off_keeps_it_off() -> None:
    gc.disable()
    with gcpace.paced():
        assert not gc.isenabled()
        assert gc.get_threshold() == (700, 10, 10)
        assert gc.get_freeze_count() == 0
    assert not gc.isenabled()


def test_workers_in_threads_overlapping_leave_it_as_it_was() -> None:
    """Workers on event loops of their own threads start and stop in any interleaving."""
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(200):
            with gcpace.paced():
                pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
