"""IneligibleSubscription: a subscriber-only post is shown only to users who follow its author.

The streams carry no subscriptions, so following the author stands for subscribing (the rule of this
system). The author is the one SubscriptionHydrator names: for a repost, the original's author. When the
user's social graph could not be read, no subscriber-only post is shown (it cannot be checked).
"""

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import CandidateFilter


class IneligibleSubscriptionFilter(CandidateFilter):
    name = "IneligibleSubscription"

    def removal_reason(self, query: FeedQuery, candidate: Candidate) -> str | None:
        author = candidate.subscription_author_id
        if author is None or author == query.user_id:
            return None
        if query.user_features is not None and author in query.user_features.following:
            return None
        return "subscriber_only"
