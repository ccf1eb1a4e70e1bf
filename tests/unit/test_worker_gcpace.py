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


def test_a_process_that_froze_objects_itself_keeps_its_freeze() -> None:
    """A pre-fork server froze its objects before forking: the worker neither freezes nor thaws
    them, and only raises the young threshold."""
    gc.freeze()
    frozen = gc.get_freeze_count()
    try:
        with gcpace.paced():  # (a frozen object may die meanwhile: the count is not exact)
            assert abs(gc.get_freeze_count() - frozen) < 100  # nothing more frozen
            assert gc.get_threshold()[0] == gcpace.YOUNG_THRESHOLD
        assert abs(gc.get_freeze_count() - frozen) < 100  # still the process's, not thawed
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.unfreeze()


def test_a_threshold_the_application_changed_meanwhile_is_kept() -> None:
    with gcpace.paced():
        gc.set_threshold(2_000, 5, 5)
    assert gc.get_threshold() == (2_000, 5, 5)
    assert gc.get_freeze_count() == 0


def test_recent_cyclic_garbage_is_collected_before_the_freeze() -> None:
    """What the young generations hold is collected first, so it is not frozen with the rest."""
    import weakref

    class Node:
        other: object = None

    node = Node()
    node.other = node  # a cycle: only the collector frees it
    alive = weakref.ref(node)
    del node
    with gcpace.paced():
        assert alive() is None
