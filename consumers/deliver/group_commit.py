"""Group commit: many callers' store work in one transaction.

Callers submit an item and wait for its result. The first item of a quiet period starts a
transaction at once (no added latency for a lone alert); whatever is submitted while it runs
goes together in the next, up to `max_batch`. After committing a batch of more than one, the
runner lingers `linger_s` (real time, like Kafka's `linger.ms`: it batches work, it schedules
nothing) before the next, so a burst whose items arrive one send at a time still shares
transactions, while a lone alert never waits: a fan-out to
1,000 subscribers costs a few dozen transactions instead of 2,000. If a batch fails, each
of its items is tried alone, so one bad item cannot fail the others; an item's own failure
reaches only its caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Apply = Callable[[Sequence[T]], Awaitable[Sequence[R]]]


class GroupCommit(Generic[T, R]):
    def __init__(self, apply: Apply[T, R], *, max_batch: int = 500,
                 linger_s: float = 0.0) -> None:
        self._apply = apply
        self._max = max_batch
        self._linger = linger_s
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        # One turn of the loop first, so callers made ready together commit together.
        await asyncio.sleep(0)
        while self._queue:
            batch, self._queue = self._queue[:self._max], self._queue[self._max:]
            try:
                results = await self._apply([item for item, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch[0][1], exc)
                else:
                    await self._one_by_one(batch)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
            # Only in a burst (this batch had company): a lone alert's next step, its
            # outcome after the send, is committed at once.
            if self._linger > 0 and len(batch) > 1 and len(self._queue) < self._max:
                await asyncio.sleep(self._linger)

    async def _one_by_one(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        for item, future in batch:
            try:
                [result] = await self._apply([item])
            except Exception as exc:
                _fail(future, exc)
            else:
                if not future.done():
                    future.set_result(result)


def _fail(future: asyncio.Future[R], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
