"""The request scheduler: concurrent across users, in order per user, bounded, never blocking its caller."""

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from agents.request_scheduler import RequestScheduler


def test_requests_of_different_users_run_concurrently_and_one_user_s_in_order() -> None:
    async def scenario() -> list[str]:
        scheduler = RequestScheduler(max_in_flight=10)
        log: list[str] = []
        gates = {name: asyncio.Event() for name in ("a1", "a2", "b1")}

        def run(name: str) -> Callable[[], Awaitable[str]]:
            async def answer() -> str:
                log.append(f"start {name}")
                await gates[name].wait()
                log.append(f"end {name}")
                return name
            return answer

        a1 = scheduler.submit(1, run("a1"))
        a2 = scheduler.submit(1, run("a2"))
        b1 = scheduler.submit(2, run("b1"))
        assert a1 is not None and a2 is not None and b1 is not None
        await asyncio.sleep(0.01)
        assert log == ["start a1", "start b1"]  # a2 waits for a1; b1 does not
        assert scheduler.in_flight == 3
        gates["b1"].set()
        await b1
        gates["a2"].set()  # a2 may be ready, but runs only after a1
        await asyncio.sleep(0.01)
        assert "start a2" not in log
        gates["a1"].set()
        assert await a2 == "a2"
        assert scheduler.in_flight == 0
        return log

    assert asyncio.run(scenario()) == ["start a1", "start b1", "end b1", "end a1", "start a2", "end a2"]


def test_past_the_bound_submit_refuses_at_once_and_a_finished_request_frees_its_place() -> None:
    async def scenario() -> None:
        counts: list[int] = []
        scheduler = RequestScheduler(max_in_flight=2, on_change=counts.append)
        gate = asyncio.Event()

        async def wait() -> None:
            await gate.wait()

        first = scheduler.submit(1, wait)
        assert scheduler.submit(2, wait) is not None
        assert scheduler.submit(3, wait) is None  # overloaded: the caller answers with an error
        gate.set()
        await first
        await asyncio.sleep(0)
        assert scheduler.submit(3, wait) is not None
        await asyncio.sleep(0.01)
        assert scheduler.in_flight == 0
        assert max(counts) == 2

    asyncio.run(scenario())


def test_a_failed_request_does_not_stop_the_user_s_next_one() -> None:
    async def scenario() -> str:
        scheduler = RequestScheduler(max_in_flight=4)

        async def fail() -> str:
            raise RuntimeError("boom")

        async def succeed() -> str:
            return "ok"

        failing = scheduler.submit(1, fail)
        following = scheduler.submit(1, succeed)
        assert failing is not None and following is not None
        with pytest.raises(RuntimeError):
            await failing
        return await following

    assert asyncio.run(scenario()) == "ok"


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RequestScheduler(max_in_flight=0)
