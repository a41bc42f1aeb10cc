"""What a request sees: its user's events before it (the snapshot taken at dispatch), not the later ones the
worker applies while it runs; and the TTL is checked as it is about to run, after the duplicate check. The
real FeedService (reverse-chron pipeline, real RocksDB post store, dict tables)."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents import metrics
from agents.feeds import FeedService
from foryou.settings import Settings
from stores.action_sequences import UserActionSequences
from stores.post_store import PostStore
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from streams.config import load_config
from streams.engagement_counts import NoEngagementCounts
from topics.schemas import FeedRequest, RankedFeed

USER, FIRST_AUTHOR, LATER_AUTHOR = 7, 100, 200
FIRST_POST, LATER_POST = 1_001, 2_001


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[FeedService, SocialGraph, list[RankedFeed]]]:
    now = int(time.time() * 1000)
    answers: list[RankedFeed] = []

    async def send_answer(user_id: int, answer: RankedFeed) -> None:
        answers.append(answer)

    graph = SocialGraph({})
    with PostStore(str(tmp_path / "posts")) as posts:
        posts.apply([
            {"v": 1, "type": "create", "post_id": post_id, "author_id": author, "created_at_ms": now - 1_000,
             "text": "hello", "media": "none", "subscriber_only": False}
            for post_id, author in ((FIRST_POST, FIRST_AUTHOR), (LATER_POST, LATER_AUTHOR))
        ])
        feeds = FeedService(
            settings=Settings(
                policy="reverse-chron", data_dir=tmp_path, bootstrap="unused:9092", request_ttl_ms=60_000
            ),
            config=load_config(env={"FORYOU_PRESET": "seed-2026-01"}), post_store=posts, counts=NoEngagementCounts(),
            ranker=None, user_actions=UserActionSequences({}), social_graph=graph, served_history=ServedHistory({}),
            answered={}, send_answer=send_answer, send_impressions=lambda user_id, records: None,
        )
        yield feeds, graph, answers


def _posts(answer: RankedFeed) -> list[int]:
    assert answer.status == "ok", answer
    return [post.post_id for post in answer.posts]


def test_a_request_ranks_from_its_snapshot_while_later_events_apply(
    service: tuple[FeedService, SocialGraph, list[RankedFeed]],
) -> None:
    feeds, graph, answers = service
    graph.apply({"type": "follow", "user_id": USER, "target_id": FIRST_AUTHOR})
    snapshot = feeds.state.snapshot(USER)  # dispatch: the events before the request
    graph.apply({"type": "follow", "user_id": USER, "target_id": LATER_AUTHOR})  # applied while it runs
    now = time.time() * 1000

    async def both() -> None:
        await feeds.answer(FeedRequest(request_id="early", user_id=USER), now, snapshot=snapshot)
        await feeds.answer(FeedRequest(request_id="next", user_id=USER), now, snapshot=feeds.state.snapshot(USER))

    asyncio.run(both())
    assert [_posts(a) for a in answers] == [[FIRST_POST], [LATER_POST, FIRST_POST]]


def test_the_ttl_is_checked_when_the_request_would_run_after_the_duplicate_check(
    service: tuple[FeedService, SocialGraph, list[RankedFeed]],
) -> None:
    feeds, _, answers = service
    now = time.time() * 1000
    expired_before = metrics.shed_requests.labels("expired")._value.get()
    request = FeedRequest(request_id="old", user_id=USER)
    asyncio.run(feeds.answer(request, now, requested_at_ms=now - 61_000))
    assert [(a.status, (a.error or "").split(":")[0]) for a in answers] == [("error", "expired")]
    asyncio.run(feeds.answer(request, now, requested_at_ms=now - 61_000))  # redelivered: answered already
    asyncio.run(feeds.reject(request, now, "overloaded", "overloaded: test"))
    assert len(answers) == 1
    assert metrics.shed_requests.labels("expired")._value.get() == expired_before + 1
