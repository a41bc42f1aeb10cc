"""Idle users leave the user tables: a sweep finds them, their own partition drops their state.

A producer can make up any number of user ids, and each costs table space for good unless something
removes it. Every `FORYOU_USER_SWEEP_INTERVAL_S` the worker scans the partitions it owns (in a thread, off
the event loop) for users whose engagement sequence is idle (newest engagement older than
`FORYOU_USER_IDLE_MS`) or whose served history no longer counts (every id older than its 2-day TTL), and
sends each an "expire" record on `<app>-user-events`: Faust tables are written only while an event of their
partition is processed, and in that order the user's state is checked again before anything is deleted, so
a user active since the scan keeps everything. The answered request ids (at most 64 per user) go once the
user holds nothing else: no engagement left and no feed served within the served history's TTL (2 days).
They guard against answering a request twice when it is read again after a crash or a rejoin, which happens
within minutes; a user who only ever got error answers (shed, expired) is found by the sweep as an entry of
the answered table with no other state. The social graph never expires: a follow or a block holds until
undone, and each user's graph is capped (stores.social_graph).
"""

from collections.abc import Callable, Iterable, MutableMapping

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


def users_without_state(
    keys: Iterable[object], has_state: Callable[[int], bool], limit: int = MAX_USERS_PER_SWEEP
) -> list[int]:
    """The user ids among `keys` (an answered table's) for which `has_state(user_id)` is false, at most `limit`."""
    found: list[int] = []
    for key in keys:
        if type(key) is int and not has_state(key):
            found.append(key)
            if len(found) >= limit:
                break
    return found


def forget_answered(user_id: int, answered: MutableMapping[int, bytes], has_state: Callable[[int], bool]) -> bool:
    """Drop the user's answered request ids once the user holds nothing else; True if they went."""
    if user_id not in answered or has_state(user_id):
        return False
    del answered[user_id]
    return True
