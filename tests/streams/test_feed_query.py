"""The pipeline's query is built from the decoded request, once: no second parse, no second set of rules."""

from streams.config import load_config
from streams.query import feed_query
from topics.limits import MAX_RESULTS
from topics.schemas import FeedRequest
from topics.validation import decode_feed_request

RESULTS = load_config(env={}).results


def test_minimal_request_takes_defaults():
    request = decode_feed_request(b'{"v": 1, "request_id": "r", "user_id": 5}')
    q = feed_query(request, now_ms=123, default_size=RESULTS.default_size)
    assert (q.user_id, q.request_id, q.now_ms, q.max_results) == (5, "r", 123, RESULTS.default_size)
    assert q.seen_ids == frozenset() and not q.in_network_only and not q.explain and q.user_features is None


def test_full_request_is_carried_over_and_the_contract_maximum_is_served():
    request = FeedRequest(
        request_id="r",
        user_id=5,
        max_results=MAX_RESULTS,
        seen_ids=(1, 2),
        served_ids=(3,),
        in_network_only=True,
        is_bottom_request=True,
        country="FR",
        language="fr",
        explain=True,
    )
    q = feed_query(request, now_ms=0, default_size=RESULTS.default_size)
    assert q.max_results == MAX_RESULTS  # the contract's bound is the only one: nothing cuts it again
    assert q.seen_ids == {1, 2} and q.served_ids == {3}
    assert q.in_network_only and q.is_bottom_request and q.explain and (q.country, q.language) == ("FR", "fr")
