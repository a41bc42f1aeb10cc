from stores.records import ActionEntry
from streams.filters import PreviouslySeenFilter
from tests.streams.foryou_fakes import candidate, ids, post, query


def test_removes_seen_posts_and_reposts_or_replies_of_seen_posts():
    candidates = [
        candidate(1, 10),  # seen
        candidate(2, 10, core=post(2, 10, repost_of_post_id=50, repost_of_user_id=11)),  # reposts a seen post
        candidate(3, 10, core=post(3, 10, in_reply_to_post_id=50, in_reply_to_user_id=11)),  # replies to one
        candidate(4, 10),
    ]
    result = PreviouslySeenFilter().filter(query(seen_ids=frozenset({1, 50})), candidates)
    assert ids(result.kept) == [4]
    assert result.reasons == {"previously_seen": 3}


def test_posts_in_the_action_sequence_count_as_seen():
    history = (ActionEntry(post_id=7, author_id=10, action_mask=1, surface="home_for_you", ts_ms=0),)
    result = PreviouslySeenFilter().filter(query(action_sequence=history), [candidate(7, 10), candidate(8, 10)])
    assert ids(result.kept) == [8]
