"""Per-user social graph: whom a user follows, blocks and mutes, and the keywords they mute.

`apply` returns True only when the state changed, so the caller can emit a follower-count delta (+1 for a
follow, -1 for an unfollow) exactly once per real change. The relations are independent of one another
(blocking does not unfollow): the pipeline drops blocked and muted authors whatever the follow state.

Bounds (per user) and what happens at them:
- following: `max_following` (5000, X's basic follow limit). A follow beyond it is refused (returns False),
  like the product's follow limit.
- blocked, muted authors: `max_blocked`, `max_muted` (10,000 each); muted keywords: `max_muted_keywords`
  (200). A new entry beyond the bound evicts the oldest one, so the latest safety action always takes effect.
- keywords are normalised (NFKC, case-folded, whitespace collapsed, stripped); an empty one or one longer than
  `max_keyword_chars` (100) after normalisation is ignored (returns False).
Self-follows, self-blocks and self-mutes are ignored.

Encoding (one table value per user; absent when the user has no relations): a header of four uint32 (counts
of following, blocked, muted ids, byte length of the keywords), then the three id lists as packed int64 in
insertion order, then the keywords as an orjson list. The table is a Faust table in production (int user id
-> bytes) and a dict in tests; only `get`, item assignment and deletion are used.
"""

import struct
import unicodedata
from array import array
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from stores import _codec
from stores.records import UserFeatures

DEFAULT_MAX_FOLLOWING: Final = 5_000
DEFAULT_MAX_BLOCKED: Final = 10_000
DEFAULT_MAX_MUTED: Final = 10_000
DEFAULT_MAX_MUTED_KEYWORDS: Final = 200
DEFAULT_MAX_KEYWORD_CHARS: Final = 100

_HEADER = struct.Struct("<IIII")
_EVENT_TYPES: Final = frozenset(
    {"follow", "unfollow", "block", "unblock", "mute", "unmute", "mute_keyword", "unmute_keyword"}
)
_ID_SIZE: Final = 8
_Item = TypeVar("_Item", int, str)  # a user id or a muted keyword


def normalize_keyword(keyword: str) -> str:
    """The form in which muted keywords are stored and against which post text should be matched."""
    return " ".join(unicodedata.normalize("NFKC", keyword).casefold().split())


@dataclass
class _Graph:
    following: list[int] = field(default_factory=list)
    blocked: list[int] = field(default_factory=list)
    muted: list[int] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.following or self.blocked or self.muted or self.keywords)


def _ids(data: bytes) -> list[int]:
    values = array("q")
    values.frombytes(data)
    return values.tolist()


def _decode(value: bytes | None) -> _Graph:
    if not value:
        return _Graph()
    n_following, n_blocked, n_muted, n_keyword_bytes = _HEADER.unpack_from(value)
    start = _HEADER.size
    lists = []
    for count in (n_following, n_blocked, n_muted):
        stop = start + count * _ID_SIZE
        lists.append(_ids(value[start:stop]))
        start = stop
    keywords = _codec.loads(value[start : start + n_keyword_bytes]) if n_keyword_bytes else []
    following, blocked, muted = lists
    return _Graph(following, blocked, muted, keywords)


def check_value(value: bytes) -> None:
    """Raise ValueError unless `value` is a graph this store wrote (a table value read back)."""
    if len(value) < _HEADER.size:
        raise ValueError(f"{len(value)} bytes, shorter than the {_HEADER.size}-byte header")
    n_following, n_blocked, n_muted, n_keyword_bytes = _HEADER.unpack_from(value)
    expected = _HEADER.size + (n_following + n_blocked + n_muted) * _ID_SIZE + n_keyword_bytes
    if len(value) != expected:
        raise ValueError(f"{len(value)} bytes, the header announces {expected}")
    if n_keyword_bytes:
        keywords = _codec.loads(value[expected - n_keyword_bytes :])  # orjson's error is a ValueError
        if type(keywords) is not list or not all(type(keyword) is str for keyword in keywords):
            raise ValueError("the muted keywords are not a list of strings")


def _encode(graph: _Graph) -> bytes:
    keyword_bytes = _codec.dumps(graph.keywords) if graph.keywords else b""
    header = _HEADER.pack(len(graph.following), len(graph.blocked), len(graph.muted), len(keyword_bytes))
    ids = b"".join(array("q", values).tobytes() for values in (graph.following, graph.blocked, graph.muted))
    return header + ids + keyword_bytes


def _add_evicting(values: list[_Item], item: _Item, bound: int) -> bool:
    if item in values:
        return False
    values.append(item)
    if len(values) > bound:
        del values[: len(values) - bound]
    return True


def _remove(values: list[_Item], item: _Item) -> bool:
    if item not in values:
        return False
    values.remove(item)
    return True


class SocialGraph:
    """Follow, block and mute relations and muted keywords per user, from social-graph events."""

    def __init__(
        self,
        table: MutableMapping[int, bytes],
        max_following: int = DEFAULT_MAX_FOLLOWING,
        max_blocked: int = DEFAULT_MAX_BLOCKED,
        max_muted: int = DEFAULT_MAX_MUTED,
        max_muted_keywords: int = DEFAULT_MAX_MUTED_KEYWORDS,
        max_keyword_chars: int = DEFAULT_MAX_KEYWORD_CHARS,
    ) -> None:
        self._table = table
        self.max_following = max_following
        self.max_blocked = max_blocked
        self.max_muted = max_muted
        self.max_muted_keywords = max_muted_keywords
        self.max_keyword_chars = max_keyword_chars

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Apply one social-graph event; True when the user's state changed."""
        event_type = event["type"]
        if event_type not in _EVENT_TYPES:
            raise ValueError(f"unknown social-graph event type {event_type!r}")
        user_id = event["user_id"]
        graph = _decode(self._table.get(user_id))
        if event_type in ("mute_keyword", "unmute_keyword"):
            keyword = normalize_keyword(event.get("keyword") or "")
            if not keyword or len(keyword) > self.max_keyword_chars:
                return False
            if event_type == "mute_keyword":
                changed = _add_evicting(graph.keywords, keyword, self.max_muted_keywords)
            else:
                changed = _remove(graph.keywords, keyword)
        else:
            target_id = event.get("target_id")
            if target_id is None:
                raise ValueError(f"social-graph event {event_type!r} needs a target_id")
            if target_id == user_id:
                return False
            changed = self._apply_relation(graph, event_type, target_id)
        if changed:
            if graph.is_empty():
                del self._table[user_id]
            else:
                self._table[user_id] = _encode(graph)
        return changed

    def _apply_relation(self, graph: _Graph, event_type: str, target_id: int) -> bool:
        if event_type == "follow":
            if target_id in graph.following or len(graph.following) >= self.max_following:
                return False
            graph.following.append(target_id)
            return True
        if event_type == "unfollow":
            return _remove(graph.following, target_id)
        if event_type == "block":
            return _add_evicting(graph.blocked, target_id, self.max_blocked)
        if event_type == "unblock":
            return _remove(graph.blocked, target_id)
        if event_type == "mute":
            return _add_evicting(graph.muted, target_id, self.max_muted)
        return _remove(graph.muted, target_id)  # "unmute", the only relation event left

    def features(self, user_id: int) -> UserFeatures:
        graph = _decode(self._table.get(user_id))
        return UserFeatures(
            following=frozenset(graph.following),
            blocked=frozenset(graph.blocked),
            muted=frozenset(graph.muted),
            muted_keywords=tuple(graph.keywords),
        )

    def following(self, user_id: int) -> list[int]:
        """Followed ids in follow order, oldest first (a stable order for capped in-network queries)."""
        return _decode(self._table.get(user_id)).following
