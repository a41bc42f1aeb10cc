"""A request is remembered as answered only once its answer is delivered (issue 12, found by reading).

Before the fix the id was written to the table as soon as the answer was handed to the producer: a crash
before the broker had it left the table saying "answered", and the redelivered request was skipped. These
tests run the real FeedService (reverse-chron pipeline, real RocksDB post store, dict tables)."""

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from agents.feeds import FeedService
from foryou.settings import Settings
from stores.action_sequences import UserActionSequences
from stores.post_store import PostStore
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from streams.config import load_config
from streams.engagement_counts import NoEngagementCounts
from topics.schemas import FeedRequest, RankedFeed

REQUEST = FeedRequest(request_id="r-1", user_id=7)


class Broker:
    """Answers handed over, and a switch for whether their delivery completes."""

    def __init__(self) -> None:
        self.handed: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.available = True

    async def send_answer(self, user_id: int, record: RankedFeed) -> None:
        answer = record.to_dict()
        self.handed.append(answer)
        while not self.available:  # the broker is away: the delivery report never comes
            await asyncio.sleep(0.01)
        self.delivered.append(answer)


@pytest.fixture
def service_and_broker(tmp_path: Path) -> tuple[FeedService, Broker, dict]:
    broker = Broker()
    answered: dict[int, bytes] = {}
    store = PostStore(str(tmp_path / "posts"))
    service = FeedService(
        settings=Settings(policy="reverse-chron", data_dir=tmp_path, bootstrap="unused:9092"),
        config=load_config(env={}), post_store=store, counts=NoEngagementCounts(), ranker=None,
        user_actions=UserActionSequences({}), social_graph=SocialGraph({}), served_history=ServedHistory({}),
        answered=answered, send_answer=broker.send_answer, send_impressions=lambda user_id, records: None,
    )
    return service, broker, answered


def test_a_crash_before_delivery_leaves_the_request_unanswered_so_its_redelivery_is_answered(
    service_and_broker: tuple[FeedService, Broker, dict],
) -> None:
    service, broker, answered = service_and_broker

    async def crash_while_delivering() -> None:
        broker.available = False
        attempt = asyncio.ensure_future(service.answer(REQUEST, received_ms=time.time() * 1000))
        await asyncio.sleep(0.05)
        attempt.cancel()  # the worker dies with the answer still in its producer's queue
        with pytest.raises(asyncio.CancelledError):
            await attempt

    asyncio.run(crash_while_delivering())
    assert broker.handed and not broker.delivered
    assert answered == {}, "remembered as answered although the broker never had the answer"

    broker.available = True
    asyncio.run(service.answer(REQUEST, received_ms=time.time() * 1000))  # the redelivered request
    assert [a["request_id"] for a in broker.delivered] == ["r-1"]


def test_a_delivered_answer_is_not_sent_again_for_a_duplicate(
    service_and_broker: tuple[FeedService, Broker, dict],
) -> None:
    service, broker, answered = service_and_broker
    asyncio.run(service.answer(REQUEST, received_ms=time.time() * 1000))
    asyncio.run(service.answer(REQUEST, received_ms=time.time() * 1000))  # forwarded twice by an ingest that crashed
    assert [a["request_id"] for a in broker.delivered] == ["r-1"]
    assert 7 in answered
