from streams.filters import OONRetweetReplyFilter
from tests.streams.foryou_fakes import FakePostStore, candidate, ids, post, query

ROOT = post(1, 10, conversation_id=1)
STORE = FakePostStore([ROOT, post(2, 20, in_reply_to_post_id=1, conversation_id=1)])


def test_drops_out_of_network_reposts_and_replies_and_replies_with_missing_ancestors():
    candidates = [
        candidate(11, 20, core=post(11, 20, repost_of_post_id=1), in_network=False),
        candidate(12, 20, core=post(12, 20, in_reply_to_post_id=1, conversation_id=1), in_network=False),
        candidate(13, 20, core=post(13, 20), in_network=False),  # an out-of-network original stays
        candidate(14, 20, core=post(14, 20, repost_of_post_id=1), in_network=True),
        candidate(15, 20, core=post(15, 20, in_reply_to_post_id=2, conversation_id=1), in_network=True),
        candidate(16, 20, core=post(16, 20, in_reply_to_post_id=99, conversation_id=1), in_network=True),
        candidate(17, 20, core=post(17, 20, in_reply_to_post_id=2, conversation_id=98), in_network=True),
    ]
    result = OONRetweetReplyFilter(STORE, enabled=True).filter(query(), candidates)
    assert ids(result.kept) == [13, 14, 15]
    assert result.reasons == {"oon_repost": 1, "oon_reply": 1, "missing_ancestor": 2}


def test_off_unless_enabled():
    assert OONRetweetReplyFilter(STORE, enabled=True).enable(query())
    assert not OONRetweetReplyFilter(STORE, enabled=False).enable(query())
