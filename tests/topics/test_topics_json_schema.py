"""The published JSON Schema files: current with the record types, and true of the records foryou produces."""

import asyncio
import json
from typing import Any

import jsonschema
import pytest

from agents.feeds import error_answer
from foryou.json_schemas import SCHEMA_DIR, stale_files
from foryou.world.wire import delete_value, engagement_value, social_value
from streams.side_effects import impression_record
from tests.streams.foryou_fakes import candidate, query
from tests.streams.test_for_you_pipeline import build, request
from tests.topics.test_topics_doc import json_examples, sections
from tests.topics.test_topics_schemas import CASES
from topics.json_schema import RECORD_TYPES, schema_files
from topics.specs import ENGAGEMENT_EVENTS, FEED_REQUESTS, IMPRESSIONS, RANKED_FEEDS, SOCIAL_GRAPH_EVENTS, TWEET_EVENTS
from topics.validation import DECODER_BY_TOPIC


def validator(topic: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{topic}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_checked_in_files_are_the_generated_ones() -> None:
    assert stale_files(SCHEMA_DIR) == [], "run `foryou json-schemas` and commit topics/json-schemas/"
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == sorted(schema_files())


def test_every_public_topic_with_a_json_value_has_a_schema() -> None:
    assert set(RECORD_TYPES) == set(DECODER_BY_TOPIC)


def _explained_feed() -> dict[str, Any]:
    pipeline, _ = build()
    result = asyncio.run(pipeline.execute(request(explain=True)))
    assert result.posts and result.stages
    return result.to_record("r-1", 7, 12.5).to_dict()


def _produced() -> list[tuple[str, dict[str, Any]]]:
    """Records as foryou's own producers build them: the worker's answers and impressions, the world's events."""
    pipeline_feed = _explained_feed()
    return [
        (RANKED_FEEDS, pipeline_feed),
        (RANKED_FEEDS, error_answer("r-2", 7, "internal error: RuntimeError: down", 0.0).to_dict()),
        (RANKED_FEEDS, error_answer("r-3", None, "invalid request: user_id is required", 0.0).to_dict()),
        (IMPRESSIONS, impression_record(query(), candidate(5, 3, score=0.25), 1).to_dict()),
        (TWEET_EVENTS, delete_value(5, 3, 1_700_000_000_000)),
        (ENGAGEMENT_EVENTS, engagement_value(7, 5, 3, "favorite", 1_700_000_000_000, dwell_ms=1200)),
        (SOCIAL_GRAPH_EVENTS, social_value("follow", 7, 1_700_000_000_000, target_id=3)),
        (SOCIAL_GRAPH_EVENTS, social_value("mute_keyword", 7, 1_700_000_000_000, keyword="spoilers")),
    ] + [(_topic_of(decoder), record.to_dict()) for record, decoder, _ in CASES]


def _topic_of(decoder: object) -> str:
    return next(topic for topic, topic_decoder in DECODER_BY_TOPIC.items() if topic_decoder is decoder)


@pytest.mark.parametrize(("topic", "value"), _produced())
def test_produced_records_validate_against_the_published_schema(topic: str, value: dict[str, Any]) -> None:
    errors = [error.message for error in validator(topic).iter_errors(value)]
    assert errors == []
    DECODER_BY_TOPIC[topic](json.dumps(value).encode())  # and the decoder agrees


@pytest.mark.parametrize("topic", sorted(DECODER_BY_TOPIC))
def test_the_documented_examples_validate(topic: str) -> None:
    for example in json_examples(sections()[topic]):
        assert [error.message for error in validator(topic).iter_errors(json.loads(example))] == []


@pytest.mark.parametrize(
    ("topic", "value"),
    [
        (FEED_REQUESTS, {"v": 1, "request_id": "r", "user_id": 0}),  # ids start at 1
        (FEED_REQUESTS, {"v": 1, "request_id": "r", "user_id": 7, "max_results": 501}),
        (FEED_REQUESTS, {"v": 2, "request_id": "r", "user_id": 7}),
        (ENGAGEMENT_EVENTS, engagement_value(7, 5, 3, "poke", 1_700_000_000_000)),
        (TWEET_EVENTS, {"v": 1, "type": "edit", "post_id": 5, "author_id": 3, "deleted_at_ms": 1}),
        (RANKED_FEEDS, {**_explained_feed(), "posts": [{"post_id": 1, "author_id": 2, "rank": 0, "score": 1.0,
                                                        "in_network": True}]}),
    ],
)
def test_the_schemas_reject_what_the_decoders_reject(topic: str, value: dict[str, Any]) -> None:
    assert list(validator(topic).iter_errors(value))
    with pytest.raises(ValueError):
        DECODER_BY_TOPIC[topic](json.dumps(value).encode())
