"""The pipeline's filters, one per module; each removes candidates with a reason."""

from streams.filters.age import AgeFilter
from streams.filters.author_socialgraph import AuthorSocialgraphFilter
from streams.filters.core_data_hydration import CoreDataHydrationFilter
from streams.filters.dedup_conversation import DedupConversationFilter
from streams.filters.drop_duplicates import DropDuplicatesFilter
from streams.filters.ineligible_subscription import IneligibleSubscriptionFilter
from streams.filters.muted_keyword import MutedKeywordFilter
from streams.filters.oon_retweet_reply import OONRetweetReplyFilter
from streams.filters.previously_seen import PreviouslySeenFilter
from streams.filters.previously_served import PreviouslyServedFilter
from streams.filters.repost_deduplication import RepostDeduplicationFilter
from streams.filters.self_post import SelfPostFilter
from streams.filters.visibility import VisibilityFilter

__all__ = [
    "AgeFilter",
    "AuthorSocialgraphFilter",
    "CoreDataHydrationFilter",
    "DedupConversationFilter",
    "DropDuplicatesFilter",
    "IneligibleSubscriptionFilter",
    "MutedKeywordFilter",
    "OONRetweetReplyFilter",
    "PreviouslySeenFilter",
    "PreviouslyServedFilter",
    "RepostDeduplicationFilter",
    "SelfPostFilter",
    "VisibilityFilter",
]
