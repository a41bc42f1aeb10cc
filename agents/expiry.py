"""Idle users leave the user tables: a sweep finds them, their own partition drops their state.

A producer can make up any number of user ids, and each costs table space for good unless something
removes it. Every `FORYOU_USER_SWEEP_INTERVAL_S` the worker scans the partitions it owns (in a thread, off
the event loop) for users whose engagement sequence is idle (newest engagement older than
`FORYOU_USER_IDLE_MS`) or whose served history no longer counts (every id older than its 2-day TTL), and
sends each an "expire" record on `<app>-user-events`: Faust tables are written only while an event of their
partition is processed, and in that order the user's state is checked again before anything is deleted, so
a user active since the scan keeps everything. The social graph never expires (a follow or a block holds
until undone); the answered request ids are at most 64 per user.
"""

from collections.abc import Callable, Iterable

# Users sent per table and sweep: bounds the work of one sweep; the next sweep finds the rest.
MAX_USERS_PER_SWEEP = 10_000


def expired_users(
    items: Iterable[tuple[object, bytes | None]], expired: Callable[[bytes], bool], limit: int = MAX_USERS_PER_SWEEP
) -> list[int]:
    """The user ids (keys) of the table entries for which `expired(value)` holds, at most `limit`."""
    found: list[int] = []
    for key, value in items:
        if type(key) is int and value is not None and expired(value):
            found.append(key)
            if len(found) >= limit:
                break
    return found
