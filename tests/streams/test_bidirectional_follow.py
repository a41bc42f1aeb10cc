"""BidirectionalFollow hydrator: mutual follows from the viewer's graph and the store's follow edges."""

import asyncio

from stores.records import UserFeatures
from streams.bidirectional_follow import BidirectionalFollowHydrator
from tests.streams.foryou_fakes import USER, FakePostStore, candidate, query

FEATURES = UserFeatures(following=frozenset({10, 20}))


def test_mutual_only_when_both_follow():
    # 10 follows the user back; 20 does not; 30 follows the user but is not followed.
    store = FakePostStore(follow_edges={(10, USER), (30, USER)})
    hydrator = BidirectionalFollowHydrator(store, enabled=True)
    candidates = [candidate(1, 10), candidate(2, 20), candidate(3, 30)]
    updates = asyncio.run(hydrator.hydrate(query(features=FEATURES), candidates))
    assert updates == {"mutual_follow": [True, False, False]}
    [(method, (user, asked))] = store.calls
    assert (method, user, set(asked)) == ("authors_following", USER, {10, 20})  # only followed authors are asked


def test_disabled_without_the_reply_boost_or_the_users_graph():
    assert BidirectionalFollowHydrator(FakePostStore(), enabled=True).enable(query(features=FEATURES))
    assert not BidirectionalFollowHydrator(FakePostStore(), enabled=False).enable(query(features=FEATURES))
    assert not BidirectionalFollowHydrator(FakePostStore(), enabled=True).enable(query(features=None))
