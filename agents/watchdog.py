"""The last line of defence against a worker that is alive but stuck.

After a long broker pause we saw a worker whose Kafka clients never recovered: it answered /metrics, but no
input moved while its consumer lag grew. A fresh process recovers at once (its state is safe: see README
"Reliability"), so when a worker has had input waiting for `stall_s` without processing any of it, it exits
(code 70) for its supervisor (docker's `restart:`, systemd, Kubernetes) to start it again.
"""

import math
import time

LAG_FRESH_S = 60.0  # a lag measurement older than this says nothing about now


class StallWatchdog:
    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self.progress = 0
        self._lag = 0
        self._lag_at = -math.inf
        self._seen_progress = 0
        self._unchanged_since: float | None = None

    def moved(self, records: int = 1) -> None:
        """Records processed (or another sign of work getting done)."""
        self.progress += records

    def observe_lag(self, records_behind: int, now: float | None = None) -> None:
        self._lag = records_behind
        self._lag_at = time.monotonic() if now is None else now

    def stalled(self, now: float | None = None) -> str | None:
        """Why the worker should exit now, or None."""
        now = time.monotonic() if now is None else now
        if self._unchanged_since is None or self.progress != self._seen_progress or self._lag == 0:
            self._seen_progress = self.progress
            self._unchanged_since = now
            return None
        if self.stall_s <= 0 or now - self._lag_at > LAG_FRESH_S or now - self._unchanged_since < self.stall_s:
            return None
        return (
            f"no input processed for {now - self._unchanged_since:.0f}s while {self._lag} records wait "
            f"(FORYOU_STALL_EXIT_S={self.stall_s:.0f})"
        )
