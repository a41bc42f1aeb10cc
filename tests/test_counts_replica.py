"""The engagement-count replica's decoding: what it counts and what it skips (its Kafka side runs in
tests/integration/test_presets.py)."""

import orjson

from agents.counts_replica import decode_counted
from topics.specs import ENGAGEMENT_EVENTS, IMPRESSIONS


def test_valid_records_decode_and_bad_ones_are_skipped():
    impression = {"v": 1, "request_id": "r", "user_id": 1, "post_id": 5, "author_id": 2, "rank": 1, "score": 0.5,
                  "served_at_ms": 1_700_000_000_000}
    engagement = {"v": 1, "user_id": 1, "post_id": 5, "author_id": 2, "action": "video_open",
                  "surface": "home_for_you", "ts_ms": 1_700_000_000_000, "dwell_ms": None}
    assert decode_counted(IMPRESSIONS, orjson.dumps(impression))["post_id"] == 5
    assert decode_counted(ENGAGEMENT_EVENTS, orjson.dumps(engagement))["action"] == "video_open"
    assert decode_counted(ENGAGEMENT_EVENTS, orjson.dumps({**engagement, "action": "like"})) is None
    assert decode_counted(IMPRESSIONS, b"not json") is None
    assert decode_counted(IMPRESSIONS, None) is None
