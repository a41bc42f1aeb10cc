from stores.records import UserFeatures
from streams.filters import IneligibleSubscriptionFilter
from tests.streams.foryou_fakes import USER, candidate, ids, query


def test_subscriber_only_posts_need_the_user_to_follow_the_author():
    candidates = [
        candidate(1, 10, subscription_author_id=10),  # followed: kept
        candidate(2, 20, subscription_author_id=20),  # not followed: removed
        candidate(3, 30),  # not subscriber-only: kept
        candidate(4, 40, subscription_author_id=USER),  # the user's own subscriber content: kept
    ]
    result = IneligibleSubscriptionFilter().filter(query(features=UserFeatures(following=frozenset({10}))), candidates)
    assert ids(result.kept) == [1, 3, 4]
    assert result.reasons == {"subscriber_only": 1}


def test_without_user_features_no_subscriber_only_post_passes():
    candidates = [candidate(1, 10, subscription_author_id=10), candidate(2, 20)]
    result = IneligibleSubscriptionFilter().filter(query(features=None), candidates)
    assert ids(result.kept) == [2]
