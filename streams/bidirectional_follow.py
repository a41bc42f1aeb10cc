"""BidirectionalFollow hydrator (2026-10 publication): whether the viewer and the candidate's author follow
each other, for the reply boost of the weighted scorer. The viewer's side is their own social graph (the
query); the author's side comes from the follow edges every worker's post store keeps from the follower
deltas of the post log. Enabled when the reply boost is on."""

from collections.abc import Sequence

from streams.candidate import Candidate, Updates
from streams.offload import run_blocking
from streams.ports import PostStore
from streams.query import FeedQuery
from streams.stages import CandidateHydrator


class BidirectionalFollowHydrator(CandidateHydrator):
    name = "BidirectionalFollow"
    fields = frozenset({"mutual_follow"})

    def __init__(self, post_store: PostStore, enabled: bool) -> None:
        self._post_store = post_store
        self._enabled = enabled

    def enable(self, query: FeedQuery) -> bool:
        return self._enabled and query.user_features is not None

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        assert query.user_features is not None  # enable() guarantees it
        following = query.user_features.following
        followed_authors = {c.author_id for c in candidates if c.author_id in following}
        # Off the event loop, as the post store's other reads (streams.hydrators says why).
        follow_back = await run_blocking(None, self._post_store.authors_following, query.user_id, followed_authors)
        return {"mutual_follow": [c.author_id in follow_back for c in candidates]}
