"""The simulator's request parsing, sample-user choice and the explorer's metrics digest (no Kafka)."""

import pytest

from agents.simulate import BadRequest, _sample_user, parse_simulation
from foryou.explore.server import key_metrics


def test_requests_are_parsed_with_defaults_and_refused_with_the_field() -> None:
    draft, top_k, oon = parse_simulation({"draft": {"author_id": 7, "text": "hi"}})
    assert draft.author_id == 7 and draft.text == "hi" and top_k == 30 and oon == 200
    assert parse_simulation({"draft": {"author_id": 7}, "top_k": 5, "oon_sample": 0})[1:] == (5, 0)
    refused = [
        ([], "object"),
        ({"draft": None}, "object"),
        ({"draft": {"author_id": 7}, "top_k": 0}, "top_k"),
        ({"draft": {"author_id": 7}, "oon_sample": True}, "oon_sample"),
        ({"draft": {"author_id": -1}}, "author_id"),
        ({"draft": {"author_id": 1, "media": "gif"}}, "media"),
    ]
    for body, field in refused:
        with pytest.raises(BadRequest, match=field):
            parse_simulation(body)


def test_sample_user_prefers_a_served_follower() -> None:
    users = [{"user_id": 1, "follower": False, "served": True}, {"user_id": 2, "follower": True, "served": False},
             {"user_id": 3, "follower": True, "served": True}]
    assert _sample_user(users) == 3
    assert _sample_user(users[:2]) == 2
    assert _sample_user(users[:1]) == 1
    assert _sample_user([]) is None


METRICS = """# TYPE foryou_feed_answers_total counter
foryou_feed_answers_total{status="ok"} 12.0
foryou_feed_answers_total{status="error"} 1.0
# TYPE foryou_feed_request_latency_seconds histogram
foryou_feed_request_latency_seconds_bucket{le="+Inf"} 13.0
foryou_feed_request_latency_seconds_count 13.0
foryou_feed_request_latency_seconds_sum 1.3
# TYPE foryou_consumer_lag_records gauge
foryou_consumer_lag_records{partition="0",topic="a"} 3.0
foryou_consumer_lag_records{partition="1",topic="a"} 4.0
# TYPE foryou_model_info gauge
foryou_model_info{version="demo-1"} 1.0
# TYPE foryou_post_store_posts gauge
foryou_post_store_posts 42.0
"""


def test_key_metrics_digest_a_prometheus_page() -> None:
    values = key_metrics(METRICS)
    assert values["answers_ok"] == 12 and values["answers_error"] == 1
    assert values["latency_mean_ms"] == 100.0 and values["consumer_lag"] == 7
    assert values["model"] == "demo-1" and values["posts"] == 42 and values["pipeline_mean_ms"] is None
