"""OONRetweetReply filter (2026-10 publication): drops out-of-network reposts and replies (a stranger's
reply or repost means little without its context), and replies whose ancestors (the post replied to, the
conversation root) are no longer live. One batched read of the ancestors from the post store."""

from collections.abc import Sequence

from streams.candidate import Candidate
from streams.ports import PostStore
from streams.query import FeedQuery
from streams.stages import Filter, FilterResult, split


def _ancestors(candidate: Candidate) -> tuple[int, ...]:
    core = candidate.core
    if core is None or core.in_reply_to_post_id is None:
        return ()
    ids = [core.in_reply_to_post_id]
    if core.conversation_id is not None and core.conversation_id not in (core.post_id, core.in_reply_to_post_id):
        ids.append(core.conversation_id)
    return tuple(ids)


class OONRetweetReplyFilter(Filter):
    name = "OONRetweetReply"

    def __init__(self, post_store: PostStore, enabled: bool) -> None:
        self._post_store = post_store
        self._enabled = enabled

    def enable(self, query: FeedQuery) -> bool:
        return self._enabled

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        wanted = {ancestor for c in candidates for ancestor in _ancestors(c)}
        live = self._post_store.get_many(wanted).keys() if wanted else set()
        reasons: list[str | None] = []
        for c in candidates:
            kind = c.core.kind if c.core is not None else None
            if c.in_network is False and kind == "repost":
                reasons.append("oon_repost")
            elif c.in_network is False and kind == "reply":
                reasons.append("oon_reply")
            elif any(ancestor not in live for ancestor in _ancestors(c)):
                reasons.append("missing_ancestor")
            else:
                reasons.append(None)
        return split(candidates, reasons)
