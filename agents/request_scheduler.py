"""Feed requests run beside event processing: concurrently across users, one at a time per user, bounded.

The user-events agent hands each feed request to `submit` and goes on with the next event at once, so
engagements and other users' requests keep flowing while a request is ranked. Requests of one user run in
their order (each waits for the user's previous one to finish, so it sees the served history that one
recorded); requests of different users run concurrently. At most `max_in_flight` requests are admitted
(running or waiting for their user's previous one); past that `submit` refuses, and the caller answers at once
with an "overloaded" error, the way the published Thunder answers RESOURCE_EXHAUSTED instead of queueing
without bound.

Plain asyncio, no Kafka: tested in tests/agents/test_request_scheduler.py.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class RequestScheduler:
    def __init__(self, max_in_flight: int, on_change: Callable[[int], None] | None = None) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self._on_change = on_change
        self._in_flight = 0
        self._last_of_user: dict[int, asyncio.Future] = {}

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, user_id: int, run: Callable[[], Awaitable[T]]) -> "asyncio.Task[T] | None":
        """Start `run()` once the user's previous request is done; None (nothing started) when full."""
        if self._in_flight >= self.max_in_flight:
            return None
        self._set_in_flight(self._in_flight + 1)
        previous = self._last_of_user.get(user_id)
        task = asyncio.ensure_future(self._run(user_id, previous, run))
        self._last_of_user[user_id] = task
        return task

    async def _run(self, user_id: int, previous: asyncio.Future | None, run: Callable[[], Awaitable[T]]) -> T:
        try:
            if previous is not None:
                await asyncio.wait([previous])  # its outcome is its own: this request runs either way
            return await run()
        finally:
            self._set_in_flight(self._in_flight - 1)
            if self._last_of_user.get(user_id) is asyncio.current_task():
                del self._last_of_user[user_id]

    def _set_in_flight(self, value: int) -> None:
        self._in_flight = value
        if self._on_change is not None:
            self._on_change(value)
