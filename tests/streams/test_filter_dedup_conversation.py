from streams.filters import DedupConversationFilter
from tests.streams.foryou_fakes import candidate, ids, post, query


def test_keeps_the_best_scored_post_per_conversation_in_place():
    candidates = [
        candidate(1, 10, core=post(1, 10, conversation_id=100), score=0.5),
        candidate(2, 11, core=post(2, 11, conversation_id=200), score=0.4),
        candidate(3, 12, core=post(3, 12, conversation_id=100, in_reply_to_post_id=1), score=0.9),
        candidate(4, 13, core=post(4, 13, conversation_id=100, in_reply_to_post_id=3), score=0.1),
    ]
    result = DedupConversationFilter().filter(query(), candidates)
    assert ids(result.kept) == [2, 3]
    assert result.reasons == {"same_conversation": 2}


def test_a_repost_shares_its_originals_conversation():
    original = post(50, 20, conversation_id=50)
    candidates = [
        candidate(1, 10, core=post(1, 10, repost_of_post_id=50), original=original, score=0.3),
        candidate(2, 11, core=post(2, 11, conversation_id=50, in_reply_to_post_id=50), score=0.6),
    ]
    assert ids(DedupConversationFilter().filter(query(), candidates).kept) == [2]


def test_without_conversation_id_falls_back_to_the_parent_then_the_post():
    candidates = [
        candidate(1, 10, core=post(1, 10), score=0.2),
        candidate(2, 11, core=post(2, 11, in_reply_to_post_id=1), score=0.1),
        candidate(3, 12, core=post(3, 12), score=0.05),
    ]
    assert ids(DedupConversationFilter().filter(query(), candidates).kept) == [1, 3]
