"""A started service keeps the garbage collector off what startup built and collects the young generation less often."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from greenzone_common import service


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_startup_objects_are_frozen_and_the_thresholds_raised() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    kept = [{"built": i} for i in range(1000)]  # what startup leaves behind

    service._settle_garbage_collector()

    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == service.GC_THRESHOLDS
    assert service.GC_THRESHOLDS[0] > 700  # the point: fewer young collections than Python's default


@pytest.mark.usefixtures("restored_collector")
def test_cyclic_garbage_made_after_startup_is_still_collected() -> None:
    service._settle_garbage_collector()

    class Node:
        other: object

    a, b = Node(), Node()
    a.other, b.other = b, a

    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None
