"""Micro-batching of model calls made from several threads at once (group commit).

A call that arrives while no batch is running runs at once, alone: a single request never waits for company.
Calls that arrive while a batch is running wait, and the first of them to wake up runs all the waiting calls
as the next batch, in one `run` over their jobs. So under load the batches grow by themselves to whatever
arrived during one forward, and with one request at a time nothing changes. Each caller gets its own
result (or its batch's exception) back in its own thread.

The ranker's requests reach it through asyncio's thread pool (`streams.offload`), so the requests a worker
runs concurrently as asyncio tasks share forwards here.
"""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")


@dataclass(slots=True)
class _Pending(Generic[J, R]):
    job: J
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class BatchStats:
    """Counters since start: `jobs` submitted, `batches` run (a batch of one counts), largest batch."""

    jobs: int = 0
    batches: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)  # batch size -> batches of that size


class MicroBatcher(Generic[J, R]):
    """`submit(job)` from any thread returns `run([..., job, ...])`'s entry for that job.

    `run` gets at most `max_jobs` jobs in arrival order and returns one result per job, in the same order.
    """

    def __init__(self, run: Callable[[Sequence[J]], Sequence[R]], max_jobs: int = 16) -> None:
        if max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        self._run = run
        self.max_jobs = max_jobs
        self._cond = threading.Condition()
        self._waiting: list[_Pending[J, R]] = []
        self._busy = False
        self.stats = BatchStats()

    def waiting(self) -> int:
        """Calls queued for the next batch (not the running one)."""
        with self._cond:
            return len(self._waiting)

    def submit(self, job: J) -> R:
        mine: _Pending[J, R] = _Pending(job)
        with self._cond:
            self._waiting.append(mine)
            self.stats.jobs += 1
        while True:
            with self._cond:
                while self._busy and not mine.done:
                    self._cond.wait()
                if mine.done:  # a batch led by another caller ran it
                    return self._outcome(mine)
                self._busy = True
                batch, self._waiting = self._waiting[: self.max_jobs], self._waiting[self.max_jobs :]
            self._lead(batch)  # mine is in it unless more than max_jobs arrived before it: then lead again

    def _lead(self, batch: list[_Pending[J, R]]) -> None:
        try:
            results = self._run([p.job for p in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch run returned {len(results)} results for {len(batch)} jobs")
            for pending, result in zip(batch, results, strict=True):
                pending.result = result
        except BaseException as e:  # every caller of the batch gets the failure, none waits forever
            for pending in batch:
                pending.error = e
        finally:
            with self._cond:
                for pending in batch:
                    pending.done = True
                self._busy = False
                stats = self.stats
                stats.batches += 1
                stats.largest = max(stats.largest, len(batch))
                stats.sizes[len(batch)] = stats.sizes.get(len(batch), 0) + 1
                self._cond.notify_all()

    @staticmethod
    def _outcome(pending: _Pending[J, R]) -> R:
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]
