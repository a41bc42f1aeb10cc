"""The production-2026-10 preset behind a real worker: its new stages run and are explained, engagement
counts come back from the impressions and engagement topics, mutual follows are seen; a bad preset stops
the worker at start with every problem listed."""

import time

import pytest

from foryou.client import FeedClient
from foryou.processes import WorkerProcess
from tests.integration.conftest import StartWorker
from tests.integration.helpers import eventually, metric_value, wait_for_posts, worker_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker(start_worker: StartWorker) -> WorkerProcess:
    return start_worker(FORYOU_POLICY="phoenix", FORYOU_PRESET="production-2026-10")


def test_production_stages_counts_and_mutual_follows(worker: WorkerProcess, client: FeedClient, ids: iter) -> None:
    user, friend, followed = next(ids), next(ids), next(ids)
    now = int(time.time() * 1000)
    friend_post, followed_post, user_post = next(ids), next(ids), next(ids)
    posts = {friend_post: friend, followed_post: followed, user_post: user}
    for i, (post, author) in enumerate(posts.items()):
        client.post(post, author, created_at_ms=now - 1_000 * (i + 1), text=f"post {i}")
    client.follow(user, friend)
    client.follow(friend, user)  # mutual
    client.flush()
    wait_for_posts(worker, posts)

    # Both follows are applied (each one's follower delta, with its edge, is on the post log) before the one
    # request: in this preset a served post is never served to the user again.
    def followers(post_id: int) -> int:
        return worker_json(worker, f"/inspect/post/{post_id}")[1]["follower_count_of_author"]

    eventually(lambda: followers(friend_post) >= 1 and followers(user_post) >= 1, timeout_s=90)
    answer = client.request(user, explain=True, timeout_s=60)
    assert answer["status"] == "ok", answer
    explained = {p["post_id"]: p["explain"] for p in answer["posts"]}
    assert explained[friend_post]["mutual_follow"] is True
    assert explained.get(followed_post, {}).get("mutual_follow") is not True
    stages = {(s["kind"], s["name"]): s["status"] for s in answer["explain"]["stages"]}
    for stage in [("source", "PopularPosts"), ("hydrator", "EngagementCounts"), ("hydrator", "BidirectionalFollow"),
                  ("filter", "OONRetweetReply"), ("scorer", "AuthorColdStart"), ("scorer", "DppReranker")]:
        assert stages[stage] == "ok", stage
    # Workers hydrate content embeddings (FORYOU_CONTENT, on by default): the DPP re-ranker selects for real.
    verdicts = {p["explain"]["dpp"] for p in answer["posts"]}
    assert "selected" in verdicts and verdicts <= {"selected", "dropped"}, verdicts

    # Served feeds are impressions; an engagement is counted too: the next explain shows both.
    client.engage(next(ids), friend_post, friend, "favorite")
    client.flush()

    def counted() -> dict | None:
        # A new viewer each time (the served filter applies to every request in this preset): the friend's
        # post reaches them through PopularPosts or retrieval, with the counts as of now.
        viewer = next(ids)
        fresh = client.request(viewer, explain=True, timeout_s=60)
        assert fresh["status"] == "ok", fresh
        view = {p["post_id"]: p["explain"] for p in fresh["posts"]}.get(friend_post)
        return view if view and view["view_count"] >= 1 and view["engagement_count"] >= 1 else None

    view = eventually(counted, timeout_s=90)
    assert view["source"] in ("popular", "phoenix_retrieval")
    assert metric_value(worker, "foryou_engagement_counts_records_total", topic="impressions") >= 1


def test_a_bad_preset_stops_the_worker_listing_every_problem(start_worker: StartWorker) -> None:
    bad = start_worker(ready=False, FORYOU_PRESET="production-2027", FORYOU_DPP_THETA="2.0")
    assert eventually(lambda: bad.proc is not None and bad.proc.poll() is not None, timeout_s=120)
    assert bad.proc.returncode != 0
    log = bad.tail(80)
    assert "unknown preset 'production-2027'" in log and "dpp.theta must be in (0, 1)" in log
