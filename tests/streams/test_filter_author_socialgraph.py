from stores.records import UserFeatures
from streams.filters import AuthorSocialgraphFilter
from tests.streams.foryou_fakes import candidate, ids, post, query

FEATURES = UserFeatures(blocked=frozenset({66}), muted=frozenset({77}))


def test_removes_blocked_and_muted_authors():
    result = AuthorSocialgraphFilter().filter(
        query(features=FEATURES), [candidate(1, 66), candidate(2, 77), candidate(3, 10)]
    )
    assert ids(result.kept) == [3]
    assert result.reasons == {"blocked_author": 1, "muted_author": 1}


def test_reposts_quotes_and_replies_involving_blocked_or_muted_accounts_are_removed():
    candidates = [
        candidate(1, 10, core=post(1, 10, repost_of_post_id=9, repost_of_user_id=66)),
        candidate(2, 10, core=post(2, 10, quote_of_post_id=8), quoted=post(8, 77)),
        candidate(3, 10, core=post(3, 10, in_reply_to_post_id=7, in_reply_to_user_id=77)),
        candidate(4, 10, core=post(4, 10, in_reply_to_post_id=6, in_reply_to_user_id=12)),
    ]
    result = AuthorSocialgraphFilter().filter(query(features=FEATURES), candidates)
    assert ids(result.kept) == [4]


def test_fails_closed_without_user_features():
    result = AuthorSocialgraphFilter().filter(query(features=None), [candidate(1, 10)])
    assert result.kept == []
    assert result.reasons == {"user_features_unavailable": 1}
