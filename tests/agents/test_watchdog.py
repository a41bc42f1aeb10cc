from agents.watchdog import StallWatchdog


def test_waiting_input_and_no_progress_for_the_limit_is_a_stall() -> None:
    dog = StallWatchdog(stall_s=100)
    dog.observe_lag(5, now=1000.0)
    assert dog.stalled(now=1000.0) is None  # starts the clock
    assert dog.stalled(now=1099.0) is None
    dog.observe_lag(7, now=1099.0)
    reason = dog.stalled(now=1101.0)
    assert reason is not None and "7 records wait" in reason


def test_progress_or_an_empty_backlog_resets_the_clock() -> None:
    dog = StallWatchdog(stall_s=100)
    dog.observe_lag(5, now=0.0)
    dog.stalled(now=0.0)
    dog.moved()
    assert dog.stalled(now=90.0) is None
    dog.observe_lag(5, now=150.0)
    assert dog.stalled(now=150.0) is None  # moved at 90: clock restarted then
    dog.observe_lag(0, now=185.0)
    assert dog.stalled(now=195.0) is None  # nothing waiting: idle, not stuck
    dog.observe_lag(3, now=200.0)
    assert dog.stalled(now=280.0) is None
    dog.observe_lag(3, now=290.0)
    assert dog.stalled(now=296.0) is not None


def test_a_stale_lag_measurement_or_a_zero_limit_never_stalls() -> None:
    dog = StallWatchdog(stall_s=10)
    dog.observe_lag(5, now=0.0)
    dog.stalled(now=0.0)
    assert dog.stalled(now=100.0) is None  # the lag was measured 100 s ago
    off = StallWatchdog(stall_s=0)
    off.observe_lag(5, now=0.0)
    off.stalled(now=0.0)
    assert off.stalled(now=50.0) is None
