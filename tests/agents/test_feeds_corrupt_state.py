"""A feed request whose user's stored state cannot be decoded is still answered, once, and the state is
explained (dead-lettered, counted) rather than raised."""

import asyncio
import dataclasses
import time
from pathlib import Path

import orjson

from agents.dead_letters import DeadLetters
from agents.feeds import FeedService
from agents.tables import CheckedTable, CheckValue, check_answered_value
from foryou.settings import Settings
from stores import social_graph as social_graph_store
from stores.action_sequences import UserActionSequences
from stores.post_store import PostStore
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from streams.config import load_config
from streams.engagement_counts import NoEngagementCounts
from topics.dead_letters import parse_dead_letter_headers
from topics.schemas import FeedRequest, RankedFeed

USER, AUTHOR, POST = 3, 7, 100


def test_corrupt_answered_ids_and_social_graph_neither_stop_nor_duplicate_the_answer(tmp_path: Path) -> None:
    sent: list[tuple] = []
    dead_letters = DeadLetters(lambda *args: sent.append(args))

    def checked(name: str, raw: dict, check: CheckValue) -> CheckedTable:
        return CheckedTable(raw, name=name, changelog_topic=f"app-{name}-changelog", partitions=4,
                            check_value=check, dead_letters=dead_letters)

    graph_raw: dict[int, bytes] = {}
    SocialGraph(graph_raw).apply({"type": "follow", "user_id": USER, "target_id": AUTHOR})
    answered_raw = {USER: b"\x00 not a list of ids"}
    now = int(time.time() * 1000)
    with PostStore(str(tmp_path / "posts")) as posts:
        posts.apply([{"v": 1, "type": "create", "post_id": POST, "author_id": AUTHOR, "created_at_ms": now - 1,
                      "text": "hello", "media": "none", "subscriber_only": False}])
        answers: list[dict] = []

        async def send_answer(user_id: int, answer: RankedFeed) -> None:
            answers.append(answer.to_dict())

        async def send_impressions(user_id: int, impressions: list[dict]) -> None:
            return None

        service = FeedService(
            settings=Settings(bootstrap="unused:9092", policy="reverse-chron", data_dir=tmp_path / "worker"),
            config=load_config(env={}),
            post_store=posts,
            counts=NoEngagementCounts(),
            ranker=None,
            user_actions=UserActionSequences({}),
            social_graph=SocialGraph(checked("social-graph", graph_raw, social_graph_store.check_value)),
            served_history=ServedHistory({}),
            answered=checked("answered-requests", answered_raw, check_answered_value),
            send_answer=send_answer,
            send_impressions=send_impressions,
        )
        request = FeedRequest(request_id="r1", user_id=USER)
        asyncio.run(service.answer(request, now))
        assert [(a["request_id"], a["status"], [p["post_id"] for p in a["posts"]]) for a in answers] == [
            ("r1", "ok", [POST])
        ]
        reasons = [parse_dead_letter_headers(headers).reason for _, _, _, headers in sent]
        assert reasons == ["corrupt_state"]
        assert orjson.loads(answered_raw[USER]) == ["r1"]  # rewritten whole by the answer
        asyncio.run(service.answer(request, now))  # a redelivery is recognised again
        assert len(answers) == 1

        graph_raw[USER] = b"\x05" * 20  # now the graph: read as absent (the user follows no one), and answered
        asyncio.run(service.answer(dataclasses.replace(request, request_id="r2"), now))
        assert [(a["request_id"], a["status"], a["posts"]) for a in answers[1:]] == [("r2", "ok", [])]
        assert [parse_dead_letter_headers(h).reason for _, _, _, h in sent] == ["corrupt_state"] * 2
