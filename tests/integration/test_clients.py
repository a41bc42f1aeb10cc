"""The clients over the real broker: FeedClient, AsyncFeedClient, the `foryou` CLI (request, tail, produce,
inspect), and `/inspect/user/{id}` routed between two workers of one group."""

import asyncio
import threading
import time
from collections.abc import Iterator

import orjson
import pytest

from foryou import cli
from foryou.client import AsyncFeedClient, FeedClient, FeedTimeout
from foryou.processes import WorkerProcess
from tests.integration.conftest import StartWorker
from tests.integration.helpers import (
    TopicReader,
    eventually,
    wait_for_posts,
    wait_for_stable_split,
    worker_json,
)
from topics.partitioning import partition_for_id, partition_for_key
from topics.specs import RANKED_FEEDS
from topics.validation import InvalidRecord

# A new consumer group reads the public topics from their start, i.e. everything the earlier tests of the
# session produced: a fresh worker answers only once it has caught up with that.
CATCH_UP_S = 300.0

# The January preset: these tests ask for a user's feed repeatedly and expect it again, as its served filter
# (bottom requests only) allows; production-2026-10 serves a post once (tests/integration/test_presets.py).
SEED = "seed-2026-01"


@pytest.fixture(scope="module")
def worker(start_worker: StartWorker) -> WorkerProcess:
    started = start_worker(FORYOU_POLICY="reverse-chron", FORYOU_PRESET=SEED)
    started.wait_caught_up(CATCH_UP_S)
    return started


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)


def followed_post(client: FeedClient, worker: WorkerProcess, ids: Iterator[int]) -> tuple[int, int, int]:
    """A user following an author with one fresh post, visible to the worker: (user, author, post)."""
    user, author, post = next(ids), next(ids), next(ids)
    client.follow(user, author)
    client.post(post, author, text="hello from the client test")
    client.flush()
    wait_for_posts(worker, [post])
    return user, author, post


def test_request_correlates_answers_by_request_id(
    worker: WorkerProcess, client: FeedClient, ids: Iterator[int]
) -> None:
    users = [followed_post(client, worker, ids) for _ in range(3)]
    request_ids = [client.send_request(user, max_results=5) for user, _, _ in users]
    # Waited for in the reverse order of sending: each gets its own answer, not the first to arrive.
    for (user, author, post), request_id in reversed(list(zip(users, request_ids, strict=True))):
        answer = client.wait(request_id, timeout_s=60)
        assert answer["request_id"] == request_id and answer["user_id"] == user
        assert answer["status"] == "ok", answer
        assert [(p["post_id"], p["author_id"], p["in_network"]) for p in answer["posts"]] == [(post, author, True)]

    answer = client.request(users[0][0], timeout_s=60)
    assert answer["status"] == "ok" and answer["posts"][0]["post_id"] == users[0][2]


def test_a_request_nobody_answers_times_out_with_a_clear_error(client: FeedClient) -> None:
    started = time.monotonic()
    with pytest.raises(FeedTimeout, match=r"no answer to request never-sent on ranked-feeds within 0\.5s"):
        client.wait("never-sent", timeout_s=0.5)
    assert time.monotonic() - started < 10


def test_producers_validate_before_sending(client: FeedClient, ids: Iterator[int]) -> None:
    reader = TopicReader(client.bootstrap, "engagement-events")
    try:
        with pytest.raises(InvalidRecord, match="action"):
            client.engage(next(ids), next(ids), next(ids), "explode")
        with pytest.raises(InvalidRecord):
            client.social("follow", next(ids))  # a follow needs a target
        with pytest.raises(InvalidRecord, match="media"):
            client.post(next(ids), next(ids), media="hologram")
        user = next(ids)
        client.engage(user, next(ids), next(ids), "favorite")
        client.flush()
        (message,) = reader.read_until(lambda messages: bool(messages))
        # Only the valid engagement left the client: the invalid ones were refused before producing.
        assert message.key() == str(user).encode()
        assert orjson.loads(message.value())["action"] == "favorite"
    finally:
        reader.close()


def test_subscribe_yields_one_users_answers_as_they_arrive(
    worker: WorkerProcess, client: FeedClient, ids: Iterator[int]
) -> None:
    (user, _, post), (other, _, _) = followed_post(client, worker, ids), followed_post(client, worker, ids)
    with client.subscribe(user, timeout_s=60) as answers:
        request_ids = [client.send_request(other), client.send_request(user), client.send_request(user)]
        received = [next(answers), next(answers)]
    assert [answer["request_id"] for answer in received] == request_ids[1:]
    assert all(answer["user_id"] == user and answer["posts"][0]["post_id"] == post for answer in received)


def test_async_client_requests_and_subscribes(worker: WorkerProcess, kafka_bootstrap: str, ids: Iterator[int]) -> None:
    user, author, post, quiet = next(ids), next(ids), next(ids), next(ids)

    async def scenario() -> tuple[dict, list[dict], list[str]]:
        async with AsyncFeedClient(kafka_bootstrap) as client:
            await client.follow(user, author)
            await client.post(post, author, text="async hello")
            await client.flush()
            await asyncio.to_thread(wait_for_posts, worker, [post])
            await client.start_reading()
            async with client.subscribe(user, timeout_s=60) as answers:
                # Two requests at once on one event loop, each awaited by its own request_id.
                first, second = await asyncio.gather(
                    client.request(user, timeout_s=60), client.request(quiet, timeout_s=60)
                )
                assert second["user_id"] == quiet and second["posts"] == []
                seen = [await anext(answers)]  # the subscriber gets its user's answer, not the other one
            with pytest.raises(FeedTimeout):
                await client.wait("never-sent-async", timeout_s=0.3)
            return first, seen, [first["request_id"]]

    first, seen, expected_ids = asyncio.run(scenario())
    assert first["status"] == "ok" and [p["post_id"] for p in first["posts"]] == [post]
    assert [answer["request_id"] for answer in seen] == expected_ids


def test_cli_produce_request_and_inspect(
    worker: WorkerProcess, cli_env: None, ids: Iterator[int], capsys: pytest.CaptureFixture[str]
) -> None:
    user, author, post, liked = next(ids), next(ids), next(ids), next(ids)
    assert cli.main(["produce", "follow", str(user), str(author)]) == 0
    assert cli.main(["produce", "post", str(post), str(author), "--text", "from the cli"]) == 0
    assert cli.main(["produce", "post", str(liked), str(author), "--text", "liked already"]) == 0
    assert cli.main(["produce", "mute-keyword", str(user), "Spoilers"]) == 0
    # An engaged post counts as seen: the feed shows `post`, not `liked`.
    assert cli.main(["produce", "engage", str(user), str(liked), str(author), "favorite", "--dwell-ms", "1200"]) == 0
    assert cli.main(["produce", "engage", str(user), str(post), str(author), "explode"]) == 2
    assert "invalid, not sent: bad_value" in capsys.readouterr().err
    wait_for_posts(worker, [post, liked])

    assert cli.main(["inspect", "post", str(post), "--worker", worker.url]) == 0
    out = capsys.readouterr().out
    assert f"post {post}" in out and "text: from the cli" in out and f"author_id: {author}" in out

    def user_state() -> dict | None:
        status, body = worker_json(worker, f"/inspect/user/{user}")
        return body if status == 200 and body["actions"] and body["muted_keywords"] else None

    state = eventually(user_state)
    assert state["following"] == [author] and state["muted_keywords"] == ["spoilers"]
    assert state["actions"] == [
        {"post_id": liked, "author_id": author, "actions": ["favorite"], "surface": "home_for_you",
         "ts_ms": state["actions"][0]["ts_ms"], "dwell_ms": 1200}
    ]
    assert state["partition"] == partition_for_id(user, 4)

    assert cli.main(["request", str(user), "--max-results", "5", "--explain"]) == 0
    out = capsys.readouterr().out
    header, columns, row = out.splitlines()[:3]
    assert f"user {user}" in header and "ok" in header and "reverse-chron" in header
    assert columns.split() == ["rank", "post", "author", "score", "in-network"]
    assert row.split()[:3] == ["1", str(post), str(author)] and row.split()[-1] == "yes"
    assert "stage" in out and "Thunder" in out  # the per-stage table of the explained request

    eventually(lambda: worker_json(worker, f"/inspect/user/{user}")[1]["served_ids"])  # a side effect: after

    assert cli.main(["inspect", "user", str(user), "--worker", worker.url]) == 0
    out = capsys.readouterr().out
    assert f"following (1): {author}" in out and "muted keywords: spoilers" in out
    assert f"post {liked} by {author}  favorite" in out and "dwell 1200ms" in out and f"served (1): {post}" in out

    assert cli.main(["request", str(user), "--json"]) == 0
    answer = orjson.loads(capsys.readouterr().out)
    assert answer["user_id"] == user and answer["status"] == "ok"
    assert cli.main(["inspect", "user", "0", "--worker", worker.url]) == 1


def test_cli_tail_follows_ranked_feeds(
    worker: WorkerProcess, client: FeedClient, cli_env: None, ids: Iterator[int], capsys: pytest.CaptureFixture[str]
) -> None:
    user = next(ids)
    tail = threading.Thread(target=cli.main, args=(["tail", "--user", str(user), "--json", "--timeout", "15"],))
    reader = TopicReader(client.bootstrap, RANKED_FEEDS)
    try:
        tail.start()
        eventually(lambda: "following ranked-feeds" in capsys.readouterr().err)
        request_id = client.send_request(user)
        reader.read_until(lambda messages: any(orjson.loads(m.value())["request_id"] == request_id for m in messages))
    finally:
        reader.close()
    tail.join(60)
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["request_id"] for line in lines] == [request_id]


def test_render_feed_shows_the_top_action_probabilities() -> None:
    answer = {
        "v": 1, "request_id": "r1", "user_id": 7, "status": "ok", "error": None, "model": "phoenix-test",
        "latency_ms": 12.5,
        "posts": [{
            "post_id": 11, "author_id": 3, "rank": 1, "score": 0.5, "in_network": False,
            "explain": {"probabilities": {"favorite": 0.4, "reply": 0.1, "repost": 0.3, "block_author": 0.01},
                        "weighted_score": 0.6, "diversity_multiplier": 1.0, "oon_multiplier": 0.7,
                        "source": "phoenix_retrieval", "retrieval_score": 0.9, "view_count": 12,
                        "engagement_count": 3, "mutual_follow": True, "cold_start_lifted": False,
                        "dpp": "fallback: no content embeddings"},
        }],
        "explain": {"degraded": [], "stages": [
            {"kind": "source", "name": "phoenix_retrieval", "status": "ok", "in": 0, "out": 40, "removed": {},
             "ms": 3.2, "error": None},
            {"kind": "filter", "name": "muted_keyword", "status": "ok", "in": 40, "out": 38,
             "removed": {"muted_keyword": 2}, "ms": 0.1, "error": None},
        ]},
    }
    text = cli.render_feed(answer)
    assert "top favorite 0.400, repost 0.300, reply 0.100" in text
    assert "source phoenix_retrieval" in text and "oon_multiplier 0.7" in text
    assert "views 12 engagements 3" in text and "mutual follow" in text and "cold start" not in text
    assert "dpp fallback: no content embeddings" in text
    assert any(line.split()[:5] == ["muted_keyword", "filter", "ok", "40", "38"] for line in text.splitlines())
    assert "muted_keyword=2" in text
    error = {**answer, "status": "error", "error": "expired: too old", "posts": []}
    assert cli.render_feed(error).endswith("error: expired: too old")


def test_inspect_user_is_routed_to_the_worker_owning_the_users_partition(
    worker: WorkerProcess, start_worker: StartWorker, client: FeedClient, ids: Iterator[int]
) -> None:
    """Two workers of one group: whichever is asked, the answer comes from the owner of the user's
    partition, the same worker that answers the user's feed requests (named in the `foryou.worker` header)."""
    second = start_worker(app_id=worker.app_id, FORYOU_POLICY="reverse-chron", FORYOU_PRESET=SEED)
    second.wait_caught_up(CATCH_UP_S)
    wait_for_stable_split([worker, second], f"{worker.app_id}-user-events", 4)
    # One user per partition, so both workers own some of them.
    users: dict[int, int] = {}
    while len(users) < 4:
        user = next(ids)
        users.setdefault(partition_for_id(user, 4), user)
    author = next(ids)
    for user in users.values():
        client.follow(user, author)
    client.flush()
    reader = TopicReader(client.bootstrap, RANKED_FEEDS)
    ranked_feed_partitions = len(reader.consumer.list_topics(RANKED_FEEDS, timeout=30).topics[RANKED_FEEDS].partitions)
    try:
        request_ids = {client.send_request(user): user for user in users.values()}
        for request_id in request_ids:
            client.wait(request_id, timeout_s=60)
        answered_by = {}
        for message in reader.read_until(lambda ms: len({orjson.loads(m.value())["request_id"] for m in ms}
                                                        & set(request_ids)) == len(request_ids)):
            body = orjson.loads(message.value())
            if body["request_id"] in request_ids:
                answered_by[body["user_id"]] = dict(message.headers())["foryou.worker"].decode()
                # Keyed by user on the partition the Java client's partitioner picks (not librdkafka's CRC32).
                assert message.key() == str(body["user_id"]).encode()
                assert message.partition() == partition_for_key(message.key(), ranked_feed_partitions)
    finally:
        reader.close()

    last: list[tuple[int, dict]] = []  # the latest inspect answer, for the failure message
    for user in users.values():
        for asked in (worker, second):

            # The follows and the requests reach the user-events topic through two ingest agents, so a request
            # may be answered before its user's follow is applied: the answer settles once it has (the routing
            # itself is checked on every try; 503 means the partition is between owners in a rebalance).
            def settled(user: int = user, asked: WorkerProcess = asked) -> dict | None:
                status, body = worker_json(asked, f"/inspect/user/{user}")
                last[:] = [(status, body)]
                assert status in (200, 503), body
                assert body["partition"] == partition_for_id(user, 4)
                return body if status == 200 and body["following"] == [author] else None

            def explain(asked: WorkerProcess = asked) -> str:
                return f"asked {asked.url}, last answer {last}\n{worker.tail()}\n{second.tail()}"

            body = eventually(settled, timeout_s=60, explain=explain)
            assert body["worker"] == answered_by[user], (user, asked.url)
    assert len(set(answered_by.values())) == 2, "both workers should own some partitions"
