"""Per-user engagement history: the last `max_len` posts a user engaged with, one entry per post.

Several actions on one post merge into one entry: the OR of their action masks (one bit per action of
topics.actions.ACTIONS, at most 32), the latest time, the largest dwell and the surface (and author) of the
latest action. An entry whose time advances moves to its new place in time order, so a fresh action moves the
post to the newest position; an event arriving late is placed by its time. When the sequence exceeds `max_len`
the oldest entries go, so a late event older than everything in a full sequence changes nothing. Replaying an
event changes nothing either. An optional action (one after the 19 Phoenix heads, e.g. not_dwelled) joins an
existing entry but never starts one: the ranker's window holds the posts it can read actions of.

Arrival order does not matter while nothing is let go; once the sequence is full it can: an action on the
oldest entry moves it to the newest position, and a later engagement arriving first lets that entry go
instead (its earlier actions with it). So a user's events must arrive in the order they were produced (the
producers are idempotent: a retry never reorders them).

Replaying is what at-least-once delivery does (input past the last commit is read again after a crash or a
seek, over a state that may hold it already), so applying an event twice must equal applying it once. Merging
alone is not enough once the sequence is full: a post whose entry went out and came back with a later action
would take the replayed earlier action's bit into its new entry (a state no single pass gives). So a full
sequence remembers the time of the newest entry it let go ("forgotten up to"), and an event no newer than
that changes nothing: any event applied before is either still merged into its post's entry or older than
an entry that went, so its replay changes nothing (tests/stores/test_action_sequences.py replays every
prefix of random streams).

Encoding (one table value per user): packed little-endian records, oldest first, 33 bytes each:
post_id int64, author_id int64, ts_ms int64, action_mask uint32, dwell_ms int32 (-1 = none),
surface index uint8 (`topics.actions.SURFACES`; unknown surfaces are stored as "other", as the model sees
them). 128 entries take 4.2 KB. Once entries were let go, a first record for post 0 (post ids start at 1)
holds the "forgotten up to" time in its ts_ms field (mask 0, no dwell).

The table is a Faust table in production (int user id -> bytes) and a dict in tests; only `get`, item
assignment and deletion are used.
"""

import bisect
import struct
from collections.abc import Mapping, MutableMapping
from typing import Any, Final, NamedTuple

from stores.records import ActionEntry
from topics.actions import ACTION_INDEX, NUM_ACTIONS, PHOENIX_ACTIONS, SURFACES, actions_to_mask, surface_id

# An optional action (beyond the heads every ranker reads) merges into an entry but never creates one.
PHOENIX_ACTIONS_MASK = actions_to_mask(PHOENIX_ACTIONS)

DEFAULT_MAX_LEN: Final = 128
_ENTRY = struct.Struct("<qqqIiB")
_NO_DWELL: Final = -1
_MAX_DWELL: Final = 2**31 - 1


class _Entry(NamedTuple):
    post_id: int
    author_id: int
    ts_ms: int
    action_mask: int
    dwell_ms: int
    surface: int


_FORGOTTEN_POST: Final = 0  # the post id of the record holding the "forgotten up to" time


def _decode(value: bytes | None) -> tuple[int | None, list[_Entry]]:
    """("forgotten up to" time or None, the entries oldest first)."""
    entries = [_Entry(*fields) for fields in _ENTRY.iter_unpack(value)] if value else []
    if entries and entries[0].post_id == _FORGOTTEN_POST:
        return entries[0].ts_ms, entries[1:]
    return None, entries


def check_value(value: bytes) -> None:
    """Raise ValueError unless `value` is a sequence this store wrote (a table value read back)."""
    if len(value) % _ENTRY.size:
        raise ValueError(f"{len(value)} bytes is not a whole number of {_ENTRY.size}-byte entries")
    for _, _, _, action_mask, dwell_ms, surface in _ENTRY.iter_unpack(value):
        if surface >= len(SURFACES) or action_mask >> NUM_ACTIONS or dwell_ms < _NO_DWELL:
            raise ValueError(f"entry out of range: mask {action_mask}, dwell {dwell_ms}, surface {surface}")


def is_idle(value: bytes, now_ms: int, idle_ms: int) -> bool:
    """Whether a stored sequence's newest engagement (its last entry) is more than `idle_ms` before `now_ms`."""
    if len(value) < _ENTRY.size:
        return True
    newest_ms: int = _ENTRY.unpack_from(value, len(value) - _ENTRY.size)[2]
    return newest_ms < now_ms - idle_ms


def _encode(forgotten_ms: int | None, entries: list[_Entry]) -> bytes:
    head = [] if forgotten_ms is None else [_Entry(_FORGOTTEN_POST, 0, forgotten_ms, 0, _NO_DWELL, 0)]
    return b"".join(_ENTRY.pack(*entry) for entry in [*head, *entries])


def _dwell(value: int | None) -> int:
    if value is None or value < 0:
        return _NO_DWELL
    return min(int(value), _MAX_DWELL)


def _entry_ts(entry: _Entry) -> int:
    return entry.ts_ms


class UserActionSequences:
    """The last `max_len` engaged posts per user, merged per post, oldest first."""

    def __init__(self, table: MutableMapping[int, bytes], max_len: int = DEFAULT_MAX_LEN) -> None:
        if max_len < 1:
            raise ValueError("max_len must be at least 1")
        self._table = table
        self.max_len = max_len

    def record(self, event: Mapping[str, Any]) -> bool:
        """Merge one engagement event into its user's sequence; True when the stored sequence changed."""
        action = event["action"]
        if action not in ACTION_INDEX:
            raise ValueError(f"unknown action {action!r}")
        user_id = event["user_id"]
        incoming = _Entry(
            post_id=event["post_id"],
            author_id=event["author_id"],
            ts_ms=event["ts_ms"],
            action_mask=1 << ACTION_INDEX[action],
            dwell_ms=_dwell(event.get("dwell_ms")),
            surface=surface_id(event.get("surface")),
        )
        forgotten_ms, entries = _decode(self._table.get(user_id))
        if forgotten_ms is not None and incoming.ts_ms <= forgotten_ms:
            return False  # applied before (or as old as what went): see the module docstring
        updated = self._merge(entries, incoming)
        if updated is None:
            return False
        entries, dropped = updated
        if dropped:
            newest_dropped = dropped[-1].ts_ms
            forgotten_ms = newest_dropped if forgotten_ms is None else max(forgotten_ms, newest_dropped)
        self._table[user_id] = _encode(forgotten_ms, entries)
        return True

    def _merge(self, entries: list[_Entry], incoming: _Entry) -> tuple[list[_Entry], list[_Entry]] | None:
        """(the sequence with `incoming` merged in, the entries it let go, oldest first), or None when
        nothing changes."""
        index = next((i for i, entry in enumerate(entries) if entry.post_id == incoming.post_id), None)
        if index is None and not incoming.action_mask & PHOENIX_ACTIONS_MASK:
            return None  # an optional action alone (e.g. not_dwelled) would only crowd the ranker's window out
        if index is None:
            merged = incoming
        else:
            current = entries[index]
            newer = incoming.ts_ms > current.ts_ms
            latest = incoming if newer else current
            merged = _Entry(
                post_id=current.post_id,
                author_id=latest.author_id,
                ts_ms=latest.ts_ms,
                action_mask=current.action_mask | incoming.action_mask,
                dwell_ms=max(current.dwell_ms, incoming.dwell_ms),
                surface=latest.surface,
            )
            if merged == current:
                return None
            if not newer:
                entries[index] = merged  # same time: keep its place
                return entries, []
            del entries[index]
        entries.insert(bisect.bisect_right(entries, merged.ts_ms, key=_entry_ts), merged)
        dropped: list[_Entry] = []
        if len(entries) > self.max_len:
            dropped = entries[: len(entries) - self.max_len]
            if index is None and merged in dropped:
                return None  # a late event older than the whole full sequence
            del entries[: len(entries) - self.max_len]
        return entries, dropped

    def expire_if_idle(self, user_id: int, now_ms: int, idle_ms: int) -> bool:
        """Forget the user's sequence when its newest engagement is more than `idle_ms` old; True if it went."""
        value = self._table.get(user_id)
        if value is None or not is_idle(value, now_ms, idle_ms):
            return False
        del self._table[user_id]
        return True

    def get(self, user_id: int) -> list[ActionEntry]:
        """The user's entries, oldest to newest."""
        return [
            ActionEntry(
                post_id=entry.post_id,
                author_id=entry.author_id,
                action_mask=entry.action_mask,
                surface=SURFACES[entry.surface],
                ts_ms=entry.ts_ms,
                dwell_ms=None if entry.dwell_ms == _NO_DWELL else entry.dwell_ms,
            )
            for entry in _decode(self._table.get(user_id))[1]
        ]
