"""EngagementCounts hydrator: views, engagements and favorites per candidate, in order."""

import asyncio

from stores.records import PostCounts
from streams.engagement_counts import EngagementCountsHydrator
from streams.pipeline import check_updates
from tests.streams.foryou_fakes import FakeEngagementCounts, candidate, query


def test_counts_one_value_per_candidate_in_order_zero_when_never_counted():
    hydrator = EngagementCountsHydrator(FakeEngagementCounts({2: PostCounts(views=40, engagements=3, favorites=2)}))
    candidates = [candidate(2, 20), candidate(1, 10)]
    updates = check_updates(hydrator.name, hydrator.fields, 2, asyncio.run(hydrator.hydrate(query(), candidates)))
    assert updates == {"view_count": [40, 0], "engagement_count": [3, 0], "favorite_count": [2, 0]}
