"""How late the event loop runs what is due: a timer that measures its own scheduling delay.

Everything a worker does for Kafka (heartbeats, fetches, commits) and for operators (/metrics, /ready) runs
on one asyncio loop; anything that blocks it shows here first. The gauge holds the largest delay seen over
the last `window_s`, so a scrape every few seconds still sees a short stall.
"""

import asyncio
import time
from collections import deque
from collections.abc import Callable


class LoopLag:
    """A sliding-window maximum of the lag samples (seconds late), fed by `run`."""

    def __init__(self, report: Callable[[float], None], interval_s: float = 0.25, window_s: float = 5.0) -> None:
        self.report = report
        self.interval_s = interval_s
        self.window = max(1, round(window_s / interval_s))
        self.samples: deque[float] = deque(maxlen=self.window)

    def observe(self, lag_s: float) -> float:
        self.samples.append(max(0.0, lag_s))
        worst = max(self.samples)
        self.report(worst)
        return worst

    async def run(self) -> None:
        while True:
            due = time.monotonic() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.observe(time.monotonic() - due)
