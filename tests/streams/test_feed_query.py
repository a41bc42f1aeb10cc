import pytest

from streams.config import load_config
from streams.query import parse_feed_request

RESULTS = load_config(env={}).results


def test_minimal_request_takes_defaults():
    q = parse_feed_request({"v": 1, "request_id": "r", "user_id": 5}, now_ms=123, results=RESULTS)
    assert (q.user_id, q.request_id, q.now_ms, q.max_results) == (5, "r", 123, RESULTS.default_size)
    assert q.seen_ids == frozenset() and not q.in_network_only and not q.explain and q.user_features is None


def test_full_request_and_clamping():
    q = parse_feed_request(
        {
            "v": 1,
            "request_id": "r",
            "user_id": 5,
            "max_results": 10_000,
            "seen_ids": [1, 2],
            "served_ids": [3],
            "in_network_only": True,
            "is_bottom_request": True,
            "country": "FR",
            "language": "fr",
            "explain": True,
        },
        now_ms=0,
        results=RESULTS,
    )
    assert q.max_results == RESULTS.max_size
    assert q.seen_ids == {1, 2} and q.served_ids == {3}
    assert q.in_network_only and q.is_bottom_request and q.explain and (q.country, q.language) == ("FR", "fr")


@pytest.mark.parametrize(
    "value",
    [
        {"v": 2, "request_id": "r", "user_id": 5},
        {"v": 1, "user_id": 5},
        {"v": 1, "request_id": "r", "user_id": "5"},
        {"v": 1, "request_id": "r", "user_id": 5, "max_results": 0},
        {"v": 1, "request_id": "r", "user_id": 5, "seen_ids": [1, "x"]},
        {"v": 1, "request_id": "r", "user_id": 5, "explain": "yes"},
        {"v": 1, "request_id": "r", "user_id": True},
    ],
)
def test_malformed_requests_are_rejected(value: dict):
    with pytest.raises(ValueError, match="feed request"):
        parse_feed_request(value, now_ms=0, results=RESULTS)
