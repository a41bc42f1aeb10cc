"""Per-user history of served post ids, for previously-served filtering and bottom-request pagination.

Each user keeps at most `max_ids` ids (2000), the oldest served dropped first, and an id counts as served
for `ttl_ms` (2 days, the post retention) after it was last served. Serving an id again refreshes its time.

Encoding (one table value per user; absent when empty): packed little-endian int64 pairs
(served_at_ms, post_id), oldest first; 2000 ids take 32 KB. The table is a Faust table in production
(int user id -> bytes) and a dict in tests; only `get`, item assignment and deletion are used.
"""

from collections.abc import MutableMapping, Sequence
from typing import Final

from stores import _codec

DEFAULT_MAX_IDS: Final = 2_000
DEFAULT_TTL_MS: Final = 2 * 86_400_000


def check_value(value: bytes) -> None:
    """Raise ValueError unless `value` is a history this store wrote (a table value read back)."""
    if len(value) % _codec.PAIR.size:
        raise ValueError(f"{len(value)} bytes is not a whole number of {_codec.PAIR.size}-byte entries")


def is_stale(value: bytes, now_ms: int, ttl_ms: int = DEFAULT_TTL_MS) -> bool:
    """Whether every id of a stored history was served more than `ttl_ms` before `now_ms` (none counts)."""
    if len(value) < _codec.PAIR.size:
        return True
    newest_served_at: int = _codec.PAIR.unpack_from(value, len(value) - _codec.PAIR.size)[0]
    return newest_served_at < now_ms - ttl_ms


class ServedHistory:
    """Bounded, expiring sets of post ids served to each user."""

    def __init__(
        self, table: MutableMapping[int, bytes], max_ids: int = DEFAULT_MAX_IDS, ttl_ms: int = DEFAULT_TTL_MS
    ) -> None:
        if max_ids < 1:
            raise ValueError("max_ids must be at least 1")
        self._table = table
        self.max_ids = max_ids
        self.ttl_ms = ttl_ms

    def _load(self, user_id: int) -> list[tuple[int, int]]:
        return _codec.unpack_pairs(self._table.get(user_id) or b"")

    def record(self, user_id: int, post_ids: Sequence[int], ts_ms: int) -> None:
        """Mark `post_ids` as served to the user at `ts_ms`; expired and excess entries are dropped."""
        served_at: dict[int, int] = {post_id: ts for ts, post_id in self._load(user_id)}
        for post_id in post_ids:
            served_at[post_id] = max(served_at.get(post_id, ts_ms), ts_ms)
        horizon = max(served_at.values(), default=ts_ms) - self.ttl_ms
        # Stable sort: ids served together keep their served order.
        entries = sorted(
            ((ts, post_id) for post_id, ts in served_at.items() if ts >= horizon), key=lambda entry: entry[0]
        )[-self.max_ids :]
        if entries:
            self._table[user_id] = _codec.pack_pairs(entries)
        elif user_id in self._table:
            del self._table[user_id]

    def expire_if_stale(self, user_id: int, now_ms: int) -> bool:
        """Forget the user's history once no id in it counts as served any more; True if it went."""
        value = self._table.get(user_id)
        if value is None or not is_stale(value, now_ms, self.ttl_ms):
            return False
        del self._table[user_id]
        return True

    def served_ids(self, user_id: int, now_ms: int | None = None) -> set[int]:
        """Ids served to the user within the last `ttl_ms` before `now_ms` (default: the wall clock)."""
        now = _codec.wall_clock_ms() if now_ms is None else now_ms
        horizon = now - self.ttl_ms
        return {post_id for ts, post_id in self._load(user_id) if ts >= horizon}
