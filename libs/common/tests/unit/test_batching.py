"""The coalescer: concurrent items in batches, each caller its own answer, a bad item failing only its caller."""

from __future__ import annotations

import asyncio

import pytest

from greenzone_common.batching import Coalescer


class Recorder:
    """``run``: doubles each item after a pause, failing every batch that holds a negative item."""

    def __init__(self, pause: float = 0.01) -> None:
        self.batches: list[list[int]] = []
        self.pause = pause

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(self.pause)
        if any(i < 0 for i in items):
            raise ValueError(f"negative item in {items}")
        return [i * 2 for i in items]


async def test_an_idle_coalescer_runs_an_item_at_once_on_its_own() -> None:
    run = Recorder()
    coalescer = Coalescer(run)

    assert await coalescer(21) == 42
    assert run.batches == [[21]]


async def test_items_that_arrive_while_batches_are_in_flight_go_together_in_the_next_batch() -> None:
    run = Recorder()
    coalescer = Coalescer(run, in_flight=1)

    first = asyncio.create_task(coalescer(0))
    await asyncio.sleep(0.001)  # its batch is in flight
    results = [await first, *await asyncio.gather(*(coalescer(i) for i in range(1, 10)))]

    assert results == [i * 2 for i in range(10)]
    assert run.batches == [[0], list(range(1, 10))]
    assert coalescer.stats.batches == 2 and coalescer.stats.items == 10 and coalescer.stats.largest == 9


async def test_no_more_than_in_flight_batches_run_at_once_and_none_is_larger_than_max_batch() -> None:
    running = 0
    most = 0
    sizes: list[int] = []

    async def run(items: list[int]) -> list[int]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        sizes.append(len(items))
        await asyncio.sleep(0.005)
        running -= 1
        return items

    coalescer = Coalescer(run, max_batch=4, in_flight=2)
    results = await asyncio.gather(*(coalescer(i) for i in range(30)))

    assert results == list(range(30))
    assert most == 2
    assert max(sizes) == 4
    assert sum(sizes) == 30


async def test_a_bad_item_fails_its_own_caller_only_and_the_others_are_run_again_on_their_own() -> None:
    run = Recorder()
    coalescer = Coalescer(run, in_flight=1)

    first = asyncio.create_task(coalescer(1))
    await asyncio.sleep(0.001)
    results = [await first, *await asyncio.gather(*(coalescer(i) for i in (2, -3, 4)), return_exceptions=True)]

    assert results[0] == 2 and results[1] == 4 and results[3] == 8
    assert isinstance(results[2], ValueError) and "[-3]" in str(results[2])
    assert run.batches == [[1], [2, -3, 4], [2], [-3], [4]]
    assert coalescer.stats.retried == 1


async def test_a_caller_cancelled_before_its_batch_is_taken_is_left_out() -> None:
    run = Recorder(pause=0.02)
    coalescer = Coalescer(run, in_flight=1)

    first = asyncio.create_task(coalescer(1))
    await asyncio.sleep(0.001)  # the first batch is in flight
    second = asyncio.create_task(coalescer(2))
    third = asyncio.create_task(coalescer(3))
    await asyncio.sleep(0)
    second.cancel()

    assert await first == 2 and await third == 6
    with pytest.raises(asyncio.CancelledError):
        await second
    assert run.batches == [[1], [3]]


async def test_a_run_that_answers_the_wrong_number_of_results_fails_every_caller() -> None:
    async def run(items: list[int]) -> list[int]:
        await asyncio.sleep(0.005)
        return items[:1]

    coalescer = Coalescer(run, in_flight=1)
    blocker = asyncio.create_task(coalescer(0))
    await asyncio.sleep(0.001)
    results = await asyncio.gather(coalescer(1), coalescer(2), return_exceptions=True)

    assert await blocker == 0
    assert all(isinstance(r, RuntimeError) for r in results)


def test_a_coalescer_needs_room_for_one_item() -> None:
    with pytest.raises(ValueError):
        Coalescer(Recorder(), max_batch=0)


def test_one_per_owner_is_made_once_and_goes_with_its_owner() -> None:
    import gc

    from greenzone_common.batching import _ONE_PER, one_per

    class Owner:
        pass

    class Kind:
        pass

    made: list[Kind] = []

    def make() -> Kind:
        made.append(Kind())
        return made[-1]

    first, second = Owner(), Owner()
    assert one_per(first, Kind, make) is one_per(first, Kind, make) is made[0]
    assert one_per(second, Kind, make) is made[1]
    owners = len(_ONE_PER)
    del first
    gc.collect()
    assert len(_ONE_PER) == owners - 1 and second in _ONE_PER
