"""agents.batching against a stand-in for the Faust stream it drives (the parts noack_take uses): batches go
out as soon as the queue is drained, in order, never past the bound, and without a timer."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agents.batching import FALLBACK_S, event_batches


class _Event:
    def __init__(self, value: int) -> None:
        self.value = value


class _Channel:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[_Event] = asyncio.Queue()


class _Stream:
    """Reads its channel's queue in a task and runs the processors on each event, as Faust's passive
    stream does."""

    def __init__(self) -> None:
        self.channel = _Channel()
        self.current_event: _Event | None = None
        self.enable_acks = True
        self.should_stop = False
        self._processors: list[Callable[[Any], Awaitable[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    def add_processor(self, processor: Callable[[Any], Awaitable[Any]]) -> None:
        self._processors.append(processor)

    def _enable_passive(self, channel: _Channel) -> None:
        self._drainer = asyncio.ensure_future(self._drain(channel))

    async def _drain(self, channel: _Channel) -> None:
        while True:
            event = await channel.queue.get()
            self.current_event = event
            for processor in self._processors:
                await processor(event.value)

    async def wait(self, event: asyncio.Event) -> None:
        await event.wait()

    async def wait_for_stopped(self, event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


async def _read(groups: list[list[int]], max_events: int) -> tuple[list[list[int]], list[float]]:
    """The batches read while each group is queued at once (the next once the last is read), and how long
    after its group was queued each batch came."""
    stream = _Stream()
    batches_it = event_batches(stream, max_events)  # type: ignore[arg-type]
    batches: list[list[int]] = []
    waits: list[float] = []
    for group in groups:
        queued_at = time.monotonic()
        for value in group:
            stream.channel.queue.put_nowait(_Event(value))
        read = 0
        while read < len(group):
            batch = await asyncio.wait_for(batches_it.__anext__(), timeout=5)
            waits.append(time.monotonic() - queued_at)
            batches.append([event.value for event in batch])
            read += len(batch)
    await batches_it.aclose()
    assert stream._processors == [] and stream.enable_acks  # left as found
    return batches, waits


def test_a_lone_event_goes_out_at_once() -> None:
    batches, waits = asyncio.run(_read([[1], [2]], max_events=10))
    assert batches == [[1], [2]]
    assert max(waits) < FALLBACK_S / 2  # not held until a timer fires


def test_what_is_queued_goes_together_in_order_and_never_past_the_bound() -> None:
    batches, _ = asyncio.run(_read([[1, 2], list(range(3, 10))], max_events=3))
    assert batches == [[1, 2], [3, 4, 5], [6, 7, 8], [9]]
