"""Group commit for the hot paths: concurrent requests' writes go to PostgreSQL as one statement per batch.

Each request that records something (a gate decision, an accepted webhook) would otherwise pay its own round trip,
its own statement and its own commit (a WAL flush). A :class:`Coalescer` queues the items of concurrent callers and
runs them through one ``run(items)`` call: while a batch is in flight, the items that arrive wait for the next one,
so an idle service runs each item at once (no added latency) and a busy one runs them in batches as large as the
load makes them. Every caller still gets its own answer only after its batch has committed.

``run`` must be atomic (one statement, or one transaction): when a batch fails, nothing of it was written, and each
item is run again on its own, so that one bad item fails its own caller and no other.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K")

_ONE_PER: weakref.WeakKeyDictionary[object, dict[type, object]] = weakref.WeakKeyDictionary()


def one_per(owner: object, kind: type[K], make: Callable[[], K]) -> K:
    """The one ``kind`` of ``owner`` (the engine or session factory whose requests a service's coalescers group):
    made by ``make`` on first use, gone with the owner. Coalescers are per process and database, like the pool
    their batches run on."""
    kinds = _ONE_PER.get(owner)
    if kinds is None:
        kinds = _ONE_PER[owner] = {}
    made = kinds.get(kind)
    if made is None:
        made = kinds[kind] = make()
    assert isinstance(made, kind)
    return made


@dataclass
class CoalescerStats:
    batches: int = 0
    items: int = 0
    largest: int = 0
    retried: int = 0  # batches that failed and were run again item by item


class Coalescer(Generic[T, R]):
    """``await coalescer(item)`` → ``run([..., item, ...])``'s result for ``item``, in batches of at most
    ``max_batch``, with at most ``in_flight`` batches running at once (PostgreSQL commits several concurrent
    statements with one WAL flush, so two in flight keep it busy while the next batch fills)."""

    def __init__(
        self, run: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_batch: int = 200, in_flight: int = 2
    ) -> None:
        if max_batch < 1 or in_flight < 1:
            raise ValueError("max_batch and in_flight must be at least 1")
        self._run = run
        self.max_batch = max_batch
        self.in_flight = in_flight
        self.stats = CoalescerStats()
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._flushing = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._flushing < self.in_flight:
            self._flushing += 1
            task = asyncio.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # a caller cancelled before its batch is taken is left out of it; once taken, its item is written anyway,
        # as a statement already sent would be
        return await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch: list[tuple[T, asyncio.Future[R]]] = []
                while self._queue and len(batch) < self.max_batch:
                    item, future = self._queue.popleft()
                    if not future.done():
                        batch.append((item, future))
                if batch:
                    await self._run_batch(batch)
        finally:
            self._flushing -= 1

    async def _run_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.stats.batches += 1
        self.stats.items += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        try:
            results = await self._run([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0][1], exc)
                return
            self.stats.retried += 1
            for item, future in batch:  # nothing of the batch was written: each on its own, to fail only the bad one
                try:
                    (result,) = await self._run([item])
                except Exception as single:
                    _fail(future, single)
                else:
                    _resolve(future, result)
            return
        except BaseException:  # cancelled (shutdown): nobody may wait for ever
            for _, future in batch:
                future.cancel()
            raise
        if len(results) != len(batch):
            error = RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
            for _, future in batch:
                _fail(future, error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _resolve(future, result)


def _resolve(future: asyncio.Future[R], result: R) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[R], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
