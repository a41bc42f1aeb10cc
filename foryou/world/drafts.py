"""`foryou bench simulate-world`: does the draft simulator predict what the world's users then do?

In a world whose ground truth is known (foryou.world.truth), in process: the world (and, with --history, the
users' simulated history) is ingested into real stores (RocksDB post store, user tables) through the
worker's own decoders, as a worker would, except for `--drafts` posts of the world's last hours, held back.
1. Each held-back post is a draft: `DraftSimulator.simulate_audience` over every user (followers and every
   other user, no sampling) predicts its engagements: the sum, over users it would be served to, of the
   predicted probabilities of the explicit engagement actions (world.truth.ENGAGEMENT_ACTIONS).
2. Then all of them are published at once (ingested into the post store and the retrieval index), every
   user requests a feed through the production pipeline, and the world's simulated users read it
   (`ClientBehaviour.react`: walking down the feed, stopping as they do, drawing their actions from the
   ground truth), `--repeats` times with different seeds. A draft's actual engagements are the explicit
   engagement actions drawn on it, averaged over the repeats.
Reported: Spearman's rank correlation (scipy) between predicted and actual over the drafts (target >= 0.6),
and against the ground truth's expected engagements of the same served feeds (no sampling noise).
Record: `simulate.world_spearman` in bench/results/simulate-world.json.
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from scipy.stats import spearmanr

from agents.feeds import UserState
from foryou.benchmarks import record, write_results
from foryou.world.client import ClientBehaviour
from foryou.world.config import HOUR_MS, preset
from foryou.world.experiment import world_anchor, world_stream
from foryou.world.truth import ENGAGEMENT_ACTIONS
from foryou.world.wire import ENGAGEMENT_EVENTS, SOCIAL_GRAPH_EVENTS, TWEET_EVENTS
from foryou.world.world import World
from phoenix.audience import AudienceRanker
from phoenix.config import DEMO
from phoenix.ranker import Ranker
from stores.action_sequences import UserActionSequences
from stores.post_store import PostStore
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from streams.config import load_config
from streams.draft import Draft
from streams.simulate import DraftSimulator
from topics.actions import ACTION_INDEX, PHOENIX_ACTIONS
from topics.validation import decode_engagement, decode_social_graph_event, decode_tweet_event

TARGET = 0.6
# The engagement actions the model predicts (its heads): predicted and simulated counts compare the same set.
MODEL_ENGAGEMENTS = ENGAGEMENT_ACTIONS & frozenset(PHOENIX_ACTIONS)
ENGAGEMENT_INDEX = np.array(sorted(ACTION_INDEX[a] for a in MODEL_ENGAGEMENTS))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench simulate-world", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drafts", type=int, default=60)
    parser.add_argument("--draft-hours", type=float, default=6.0, help="drafts are posts of the last H hours")
    parser.add_argument("--window-hours", type=float, default=47.0)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="reads of the published feeds (seeds)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a trained Phoenix (default: untrained)")
    parser.add_argument("--history", type=Path, default=None, help="a history directory (foryou.world.history)")
    parser.add_argument("--out-dir", type=Path, default=None)
    return parser.parse_args(argv)


def choose_drafts(world: World, count: int, hours: float, seed: int) -> np.ndarray:
    """World post ids: originals (not replies, reposts or quotes) of the last `hours`, never deleted."""
    from foryou.world.posts import NEVER, ORIGINAL

    posts = world.posts
    recent = posts.created_ms >= world.config.end_ms - int(hours * HOUR_MS)
    eligible = np.flatnonzero(recent & (posts.kind == ORIGINAL) & (posts.deleted_ms == NEVER) & ~posts.subscriber_only)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(eligible, size=min(count, eligible.size), replace=False)
    return world.post_ids()[np.sort(chosen)]


class InProcessWorker:
    """The stores and pipeline of one worker, fed the world's events through the worker's decoders."""

    def __init__(self, directory: Path, ranker: Ranker) -> None:
        self.post_store = PostStore(str(directory / "posts"))
        self.actions = UserActionSequences({})
        self.graph = SocialGraph({})
        self.ranker = ranker
        self.simulator = DraftSimulator(
            config=load_config(), post_store=self.post_store,
            user_state=UserState(self.actions, self.graph, ServedHistory({})), ranker=ranker,
            audience_ranker=AudienceRanker(ranker), cache_users=100_000,
        )

    def ingest(self, events: list[Any], held_back: set[int], now_ms: int) -> None:
        batch = []
        for event in events:
            raw = orjson.dumps(event.value)
            if event.topic == TWEET_EVENTS:
                value = decode_tweet_event(raw).to_dict()
                if value["post_id"] not in held_back:
                    batch.append(value)
            elif event.topic == SOCIAL_GRAPH_EVENTS:
                self.graph.apply(decode_social_graph_event(raw).to_dict())
            elif event.topic == ENGAGEMENT_EVENTS:
                value = decode_engagement(raw).to_dict()
                if value["post_id"] not in held_back:
                    self.actions.record(value)
        self.publish(batch, now_ms)

    def publish(self, creates: list[dict], now_ms: int) -> None:
        for start in range(0, len(creates), 2000):
            self.post_store.apply(creates[start : start + 2000], now_ms=now_ms)
        live = [c for c in creates if c.get("type") == "create" and self.post_store.get(c["post_id"]) is not None]
        self.ranker.index.add_many([c["post_id"] for c in live], [c["author_id"] for c in live])
        self.ranker.index.flush()


def draft_of(world: World, post_id: int) -> Draft:
    post = world.post(post_id)
    return Draft(author_id=post.author_id, text=post.text, media=post.media,
                 video_duration_ms=post.video_duration_ms if post.media == "video" else None, post_id=post_id)


def run(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    world = World.generate(preset(args.preset, seed=args.seed))
    history = None
    if args.history is not None:
        from foryou.world.history import load_history

        history = load_history(args.history)
    ranker = Ranker.from_checkpoint(args.checkpoint) if args.checkpoint else Ranker.untrained(DEMO, seed=0)
    ranker.warmup()
    shift = world_anchor(world)
    now = int(time.time() * 1000)
    drafts = choose_drafts(world, args.drafts, args.draft_hours, args.seed)
    held_back = set(drafts.tolist())
    events = world_stream(world, shift, int(args.window_hours * HOUR_MS),
                          history.engagements if history else (), history.social_graph_events if history else ())
    worker = InProcessWorker(directory, ranker)
    worker.ingest(events, held_back, now)
    users = world.user_ids().tolist()
    started = time.perf_counter()
    predicted = []
    for post_id in drafts.tolist():
        outcomes = asyncio.run(worker.simulator.simulate_audience(draft_of(world, post_id), users, top_k=args.top_k))
        predicted.append(sum(float(o.probabilities[ENGAGEMENT_INDEX].sum()) for o in outcomes
                             if o.served and o.probabilities is not None))
    simulate_s = time.perf_counter() - started

    # Publish every draft now, then let every user read one feed.
    creates = []
    for post_id in drafts.tolist():
        event = draft_of(world, post_id).tweet_event(now, worker.post_store)
        creates.append(event)
    worker.publish(creates, now)
    client = ClientBehaviour(world)
    world_now = shift.to_world(now)
    index = {int(p): i for i, p in enumerate(drafts.tolist())}
    actual = np.zeros((args.repeats, len(drafts)))
    expected = np.zeros(len(drafts))
    feeds = {}
    for user in users:
        result = asyncio.run(worker.simulator.preview_feed(user, top_k=args.top_k, now_ms=now))
        feeds[user] = [p["post_id"] for p in result["feed"]]
        served = [p for p in feeds[user] if p in index]
        if served:
            probabilities = client.truth.action_probabilities(np.full(len(served), user), np.array(served), world_now)
            for post_id, row in zip(served, probabilities, strict=True):
                expected[index[post_id]] += row[ENGAGEMENT_INDEX].sum()
    states = history.states if history else {}
    for repeat in range(args.repeats):
        rng = np.random.default_rng(args.seed * 1000 + repeat)
        for user, feed in feeds.items():
            state = states.get(user) or client.initial_state(rng, user, world_now)
            reaction = client.react(rng, state, feed, world_now)
            for viewed in reaction.viewed:
                if viewed.post_id in index:
                    actual[repeat, index[viewed.post_id]] += len(MODEL_ENGAGEMENTS.intersection(viewed.actions))
    mean_actual = actual.mean(0)
    return {
        "drafts": len(drafts),
        "users": len(users),
        "model": ranker.version,
        "spearman_vs_actual": float(spearmanr(predicted, mean_actual).statistic),
        "spearman_vs_truth_expected": float(spearmanr(predicted, expected).statistic),
        "predicted_total": float(np.sum(predicted)),
        "actual_total": float(mean_actual.sum()),
        "truth_expected_total": float(expected.sum()),
        "simulate_s_per_draft": simulate_s / max(1, len(drafts)),
        "per_draft": [{"post_id": int(p), "predicted": predicted[i], "actual": float(mean_actual[i]),
                       "truth_expected": float(expected[i])} for i, p in enumerate(drafts.tolist())],
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args, Path(tmp))
    params = {"preset": args.preset, "seed": args.seed, "drafts": report["drafts"], "users": report["users"],
              "top_k": args.top_k, "repeats": args.repeats, "model": report["model"],
              "history": str(args.history) if args.history else None,
              "spearman_vs_truth_expected": round(report["spearman_vs_truth_expected"], 3),
              "predicted_total": round(report["predicted_total"], 1), "actual_total": round(report["actual_total"], 1)}
    records = [record("simulate.world_spearman", "spearman", report["spearman_vs_actual"], "rho", TARGET, **params)]
    path = write_results("simulate-world", records, args.out_dir) if args.out_dir else write_results(
        "simulate-world", records)
    print(f"simulate.world_spearman: {report['spearman_vs_actual']:.3f} vs what users did "
          f"({report['spearman_vs_truth_expected']:.3f} vs the truth's expectation) over {report['drafts']} drafts, "
          f"{report['users']} users; predicted {report['predicted_total']:.1f}, actual {report['actual_total']:.1f} "
          f"engagements -> {path}")
    return 0
