"""Seeded mutation fuzzing of every decoder: valid records with fields replaced by hostile JSON values,
fields dropped or added, and their encoded bytes flipped, cut or spliced.

Whatever comes in, a decoder either returns a record that survives its own round trip (encode, decode,
equal), or refuses it with InvalidRecord and a known reason and a bounded detail; any other exception is
a crash a hostile producer could trigger in a worker.
"""

import json
import random
from typing import Any

import orjson
import pytest

from tests.topics.test_topics_validation import (
    ENGAGEMENT,
    FEED_REQUEST,
    FOLLOW,
    IMPRESSION,
    MUTE_KEYWORD,
    RANKED_FEED,
    TWEET_CREATE,
    TWEET_DELETE,
)
from topics.specs import ENGAGEMENT_EVENTS, FEED_REQUESTS, IMPRESSIONS, RANKED_FEEDS, SOCIAL_GRAPH_EVENTS, TWEET_EVENTS
from topics.validation import DECODER_BY_TOPIC, REASONS, InvalidRecord

CASES_PER_SEED = 400
SEEDS = range(5)

VALID_BY_TOPIC: dict[str, list[dict[str, Any]]] = {
    TWEET_EVENTS: [TWEET_CREATE, TWEET_DELETE],
    ENGAGEMENT_EVENTS: [ENGAGEMENT],
    SOCIAL_GRAPH_EVENTS: [FOLLOW, MUTE_KEYWORD],
    FEED_REQUESTS: [FEED_REQUEST, {**FEED_REQUEST, "seen_ids": [1, 2], "max_results": 10, "explain": True}],
    RANKED_FEEDS: [RANKED_FEED],
    IMPRESSIONS: [IMPRESSION],
}

# Values a hostile or buggy producer might put anywhere.
HOSTILE_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**63 - 1, 2**63, -(2**63), 2**64, 10**30, 0.0, -0.0, 1.5, 1e308, -1e308,
    "", " ", "1", "create", "favorite", "x" * 5_000, "\u0000", "\u202e", "😀" * 100, [], [1], [None], ["1"],
    [2**64], list(range(50_000)), {}, {"v": 1}, [[[]]],
]


def _mutate_value(rng: random.Random, record: dict[str, Any]) -> dict[str, Any]:
    mutated = dict(record)
    action = rng.randrange(4)
    key = rng.choice(sorted(mutated))
    if action == 0:
        mutated[key] = rng.choice(HOSTILE_VALUES)
    elif action == 1:
        del mutated[key]
    elif action == 2:
        mutated[rng.choice(["extra", "V", key.upper(), key + " "])] = rng.choice(HOSTILE_VALUES)
    else:  # two fields swap values: right types in the wrong places
        other = rng.choice(sorted(mutated))
        mutated[key], mutated[other] = mutated[other], mutated[key]
    return mutated


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    raw = bytearray(data)
    action = rng.randrange(4)
    if action == 0 and raw:
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    elif action == 1:
        del raw[rng.randrange(len(raw) + 1) :]
    elif action == 2:
        at = rng.randrange(len(raw) + 1)
        raw[at:at] = rng.choice([b"\x00", b"\xff", b'"', b"{", b"]", b",", b"\\u0000", b"1e999", b"-"])
    else:
        at = rng.randrange(len(raw) + 1)
        raw[at:at] = raw[rng.randrange(len(raw) + 1) :]
    return bytes(raw)


def _hostile_inputs(rng: random.Random, records: list[dict[str, Any]]) -> list[bytes]:
    inputs = []
    for _ in range(CASES_PER_SEED):
        record = rng.choice(records)
        for _ in range(rng.randint(1, 3)):
            record = _mutate_value(rng, record)
        # The standard library writes integers orjson refuses to (beyond 64 bits), as a hostile producer may.
        data = json.dumps(record, ensure_ascii=rng.random() < 0.5).encode()
        if rng.random() < 0.4:
            data = _mutate_bytes(rng, data)
        inputs.append(data)
    return inputs


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("topic", sorted(VALID_BY_TOPIC))
def test_decoders_refuse_or_round_trip_every_mutation(topic: str, seed: int) -> None:
    decode = DECODER_BY_TOPIC[topic]
    rng = random.Random(f"{topic}/{seed}")
    outcomes = {"accepted": 0, "refused": 0}
    for data in _hostile_inputs(rng, VALID_BY_TOPIC[topic]):
        try:
            record = decode(data)
        except InvalidRecord as refusal:
            assert refusal.reason in REASONS
            assert len(refusal.detail) <= 300
            outcomes["refused"] += 1
            continue
        again = decode(orjson.dumps(record.to_dict()))  # type: ignore[attr-defined]
        assert again == record, data
        outcomes["accepted"] += 1
    # The mutations must exercise both paths, or this test proves nothing.
    assert outcomes["refused"] > CASES_PER_SEED // 4, outcomes
    assert outcomes["accepted"] > 0, outcomes


def test_the_valid_seeds_decode() -> None:
    for topic, records in VALID_BY_TOPIC.items():
        for record in records:
            DECODER_BY_TOPIC[topic](orjson.dumps(record))
