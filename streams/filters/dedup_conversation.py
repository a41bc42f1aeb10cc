"""DedupConversation (post-selection): at most one post per conversation, the best scored; the kept posts
stay in their order.

The conversation of a post is its `conversation_id`; when the producer gave none, the post it replies to,
else the post itself. A repost belongs to the conversation of its original.
"""

from collections.abc import Sequence

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import Filter, FilterResult


def conversation_key(candidate: Candidate) -> int:
    post = candidate.content
    if post is None:
        return candidate.post_id
    if candidate.is_repost and candidate.original is None:
        return post.repost_of_post_id if post.repost_of_post_id is not None else post.post_id
    if post.conversation_id is not None:
        return post.conversation_id
    if post.in_reply_to_post_id is not None:
        return post.in_reply_to_post_id
    return post.post_id


class DedupConversationFilter(Filter):
    name = "DedupConversation"

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        best: dict[int, int] = {}  # conversation -> index of its best candidate so far
        for index, candidate in enumerate(candidates):
            key = conversation_key(candidate)
            current = best.get(key)
            if current is None or _score(candidate) > _score(candidates[current]):
                best[key] = index
        winners = set(best.values())
        result = FilterResult(kept=[], removed=[])
        for index, candidate in enumerate(candidates):
            if index in winners:
                result.kept.append(candidate)
            else:
                result.removed.append(candidate)
                result.reasons["same_conversation"] += 1
        return result


def _score(candidate: Candidate) -> float:
    return candidate.score if candidate.score is not None else float("-inf")
