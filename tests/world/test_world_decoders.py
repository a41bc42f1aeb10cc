"""The world's records pass the project's own strict decoders (topics.validation, phoenix.log)."""

from pathlib import Path

import orjson

from foryou.world.client import ClientBehaviour
from foryou.world.config import preset
from foryou.world.offline import export_engagement_log
from foryou.world.simulate import oracle_policy, simulate_offline
from foryou.world.world import World
from phoenix.log import read_log
from topics.validation import (
    decode_engagement,
    decode_feed_request,
    decode_social_graph_event,
    decode_tweet_event,
)


def test_world_records_decode(tmp_path: Path) -> None:
    world = World.generate(preset("tiny", seed=4))
    for event in world.events():
        decode = decode_tweet_event if event.topic == "tweet-events" else decode_social_graph_event
        decode(orjson.dumps(event.value))
    client = ClientBehaviour(world)
    result = simulate_offline(world, oracle_policy(client), 80, client=client)
    assert result.engagements and result.feed_requests
    for value in result.engagements:
        decode_engagement(orjson.dumps(value))
    for value in result.social_graph_events:
        decode_social_graph_event(orjson.dumps(value))
    for value in result.feed_requests:
        decode_feed_request(orjson.dumps(value))
    path = tmp_path / "log.jsonl"
    written = export_engagement_log(result.impressions, result.engagements, path)
    log = read_log(path)
    assert len(log) == written == len(result.impressions)
    assert sum(bool(line.actions) for line in log) > 0
