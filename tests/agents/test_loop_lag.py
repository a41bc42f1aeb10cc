import asyncio
import time

from agents.loop_lag import LoopLag


def test_window_keeps_the_worst_recent_sample() -> None:
    reported: list[float] = []
    lag = LoopLag(reported.append, interval_s=1.0, window_s=3.0)
    assert [lag.observe(x) for x in (0.01, 2.0, 0.0, 0.0, 0.0)] == [0.01, 2.0, 2.0, 2.0, 0.0]
    assert lag.observe(-0.5) == 0.0  # woken a little early is not negative lag


def test_a_blocked_loop_shows_as_lag() -> None:
    reported: list[float] = []

    async def main() -> None:
        lag = LoopLag(reported.append, interval_s=0.05, window_s=1.0)
        task = asyncio.ensure_future(lag.run())
        await asyncio.sleep(0.12)
        time.sleep(0.4)  # what a blocking broker call on the loop would do
        await asyncio.sleep(0.12)
        task.cancel()

    asyncio.run(main())
    assert max(reported) >= 0.3
    assert min(reported) < 0.05
