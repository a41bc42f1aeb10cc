"""`foryou bench simulate`: the draft simulator's batched path for an audience of 1,000 users, in process.

The world: a real post store (RocksDB, temporary), user tables over dicts (Faust tables in a worker), an
untrained DEMO Phoenix whose retrieval index holds every post. Each user follows `--follows` of `--authors`
authors (each with `--posts` recent posts) and has `--history` engagements. The simulator is the one a
worker builds (streams.simulate.DraftSimulator with phoenix.audience.AudienceRanker).

Records: `simulate.audience1000` `median_s` (target 2 s): one draft against the 1,000 users with their
baselines cached, the simulator's steady state; `cold_s`: the first draft, which also builds every user's
baseline (one production pipeline run per user); `baseline_ms_per_user`.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from agents.feeds import UserState
from foryou.benchmarks import record, write_results
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
from topics.actions import ACTIONS
from topics.schemas import TweetCreate

TARGET_S = 2.0
HOUR_MS = 3_600_000


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench simulate", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--authors", type=int, default=200)
    parser.add_argument("--posts", type=int, default=10, help="recent posts per author")
    parser.add_argument("--follows", type=int, default=20, help="authors each user follows")
    parser.add_argument("--history", type=int, default=64)
    parser.add_argument("--drafts", type=int, default=5, help="timed drafts after the cold one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=None, help="default: bench/results")
    return parser.parse_args(argv)


def build(directory: Path, args: argparse.Namespace) -> tuple[DraftSimulator, list[int], list[int]]:
    rng = np.random.default_rng(args.seed)
    now = int(time.time() * 1000)
    store = PostStore(str(directory / "posts"))
    authors = list(range(1_000_000, 1_000_000 + args.authors))
    users = list(range(1, args.users + 1))
    events = []
    post_id = 10_000_000
    for author in authors:
        for _ in range(args.posts):
            post_id += 1
            events.append(TweetCreate(post_id=post_id, author_id=author,
                                      created_at_ms=now - int(rng.integers(60_000, 40 * HOUR_MS)),
                                      text=f"post {post_id}").to_dict())
    store.apply(events, now_ms=now)
    ranker = Ranker.untrained(DEMO, seed=0)
    ranker.warmup()
    ranker.index.add_many([e["post_id"] for e in events], [e["author_id"] for e in events])
    ranker.index.flush()
    actions, graph = UserActionSequences({}), SocialGraph({})
    for user in users:
        for author in rng.choice(authors, size=args.follows, replace=False):
            graph.apply({"type": "follow", "user_id": user, "target_id": int(author), "ts_ms": now})
        for i in rng.choice(len(events), size=args.history, replace=False):
            e = events[int(i)]
            actions.record({"user_id": user, "post_id": e["post_id"], "author_id": e["author_id"],
                            "action": ACTIONS[int(rng.integers(0, 11))], "surface": "home_for_you",
                            "ts_ms": now - int(rng.integers(1_000, 20 * HOUR_MS)), "dwell_ms": None})
    simulator = DraftSimulator(
        config=load_config(), post_store=store, user_state=UserState(actions, graph, ServedHistory({})),
        ranker=ranker, audience_ranker=AudienceRanker(ranker),
    )
    return simulator, users, authors


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    with tempfile.TemporaryDirectory() as tmp:
        simulator, users, authors = build(Path(tmp), args)
        started = time.perf_counter()
        asyncio.run(simulator.simulate_audience(Draft(author_id=authors[0], text="cold"), users, top_k=30))
        cold = time.perf_counter() - started
        timings = []
        for i in range(args.drafts):
            draft = Draft(author_id=authors[(i + 1) % len(authors)], text=f"draft {i}",
                          media="video" if i % 2 else "none", video_duration_ms=30_000 if i % 2 else None)
            started = time.perf_counter()
            asyncio.run(simulator.simulate_audience(draft, users, top_k=30))
            timings.append(time.perf_counter() - started)
        simulator.post_store.close()  # type: ignore[attr-defined]
    params = {"users": args.users, "authors": args.authors, "posts_per_author": args.posts,
              "follows": args.follows, "history": args.history, "drafts": args.drafts, "model": "untrained DEMO",
              "machine": "2 cores shared with other jobs (noisy)"}
    median = statistics.median(timings)
    records = [
        record(f"simulate.audience{args.users}", "median_s", median, "s", TARGET_S, **params),
        record(f"simulate.audience{args.users}", "cold_s", cold, "s", None, **params),
        record(f"simulate.audience{args.users}", "baseline_ms_per_user", (cold - median) / args.users * 1000, "ms",
               None, **params),
    ]
    path = write_results("simulate", records, args.out_dir) if args.out_dir else write_results("simulate", records)
    print(f"simulate.audience{args.users}: warm median {median:.2f} s (target {TARGET_S} s), cold {cold:.1f} s "
          f"-> {path}")
    return 0
