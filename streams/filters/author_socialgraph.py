"""AuthorSocialgraph: drops posts involving an account the user blocked or muted: the author, the author of
a reposted original, of a quoted post, or the user replied to (the conversation shows the parent).

When the user's features could not be read, every candidate is dropped (fail closed): showing a blocked
account's post is worse than an empty page, and the request says it is degraded.
"""

from collections.abc import Sequence

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import Filter, FilterResult, partition

UNAVAILABLE = "user_features_unavailable"


def involved_accounts(candidate: Candidate) -> list[int]:
    accounts = [candidate.author_id]
    post = candidate.core
    if post is not None:
        for account in (post.repost_of_user_id, post.in_reply_to_user_id):
            if account is not None:
                accounts.append(account)
    for other in (candidate.original, candidate.quoted):
        if other is not None:
            accounts.append(other.author_id)
    return accounts


class AuthorSocialgraphFilter(Filter):
    name = "AuthorSocialgraph"

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        features = query.user_features
        if features is None:
            return partition(candidates, lambda _: UNAVAILABLE)

        hidden = features.blocked | features.muted  # one check for the common case: nobody hidden involved

        def reason(candidate: Candidate) -> str | None:
            accounts = involved_accounts(candidate)
            if hidden.isdisjoint(accounts):
                return None
            return "blocked_author" if not features.blocked.isdisjoint(accounts) else "muted_author"

        return partition(candidates, reason)
