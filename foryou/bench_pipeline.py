"""`foryou bench pipeline`: the For You candidate pipeline in process, without Kafka, timed per stage.

The pipeline is the production one, built by `agents.feeds.FeedService` as a worker builds it, over real
stores: the post store (RocksDB, in a temporary directory) and the user-state stores over in-memory dict
tables (Faust tables in a worker), with an untrained DEMO Phoenix ranker whose retrieval index holds every
post, as a worker's runtime indexes them. The world is the feed benchmark's (foryou.bench_feed): each user
follows `--followed` authors with one fresh post each (the in-network candidates; a tenth are reposts of
out-of-network posts) and has `--history` engagements on a corpus of out-of-network posts (a tenth videos)
that retrieval draws from. With the seed-2026-01 preset's sources (Thunder 500, retrieval 500; `--preset`)
every request ranks about 1,000 candidates.

Each timed request is `CandidatePipeline.execute` with explain on (for the stage reports); its side effects
run afterwards, untimed, as a worker runs them after answering. Records: `pipeline.inprocess.c1000`
(median_ms, p99_ms of execute, one request at a time) and `pipeline.stage.<kind>.<name>` (median_ms of each
stage's reported time). Then the same requests with `--in-flight` (24) executions running at once as asyncio
tasks, as a worker runs concurrent requests: `pipeline.inprocess.c1000.concurrent` requests_per_s and p95_ms,
once with the ranker's micro-batcher sharing forwards between requests and once with one request per forward
(`batching` in params; the ratio of the two is the batching gain measured in one run).
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np

from agents.collector import tune_collector
from agents.feeds import FeedService
from foryou.benchmarks import record, write_results
from foryou.settings import Settings
from phoenix.config import DEMO
from phoenix.ranker import Ranker
from stores.action_sequences import UserActionSequences
from stores.engagement_counts import EngagementCounts
from stores.post_store import PostStore
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from streams.config import load_config
from streams.pipeline import CandidatePipeline
from streams.query import feed_query
from topics.actions import ACTIONS
from topics.schemas import FeedRequest, TweetCreate

LATENCY_TARGET_MEDIAN_MS = 30.0
LATENCY_TARGET_P99_MS = 100.0
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_APPLY_BATCH = 2_000


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--followed", type=int, default=500, help="authors each user follows (one post each)")
    parser.add_argument("--oon-posts", type=int, default=20_000, help="out-of-network posts for retrieval")
    parser.add_argument("--history", type=int, default=128)
    parser.add_argument("--requests", type=int, default=200, help="timed requests")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests first")
    parser.add_argument("--in-flight", type=int, default=24, help="concurrent executions in the concurrent runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="seed-2026-01",
                        help="pipeline preset (seed-2026-01 keeps the c1000 record's 500 + 500 candidates)")
    parser.add_argument("--quick", action="store_true", help="a short run (fewer requests)")
    parser.add_argument("--out-dir", type=Path, default=None, help="default: bench/results")
    return parser.parse_args(argv)


async def _discard_answer(user_id: int, answer: dict) -> None:
    """The benchmark times the pipeline, not the broker: answers go nowhere."""


class World:
    """The benchmark's stores, ranker and production pipeline, populated once."""

    def __init__(self, directory: Path, args: argparse.Namespace) -> None:
        rng = np.random.default_rng(args.seed)
        self.now_ms = int(time.time() * 1000)
        self.post_store = PostStore(str(directory / "post-store"))
        self.counts = EngagementCounts(str(directory / "engagement-counts"))
        self.ranker = Ranker.untrained(DEMO, seed=0)
        self.ranker.warmup()
        tables: dict[str, dict[int, bytes]] = {"actions": {}, "graph": {}, "served": {}}
        actions = UserActionSequences(tables["actions"])
        graph = SocialGraph(tables["graph"])
        served = ServedHistory(tables["served"])
        next_id = iter(range(1_000_000_000, 2_000_000_000))
        self.users = [next(next_id) for _ in range(args.users)]
        oon_authors = [next(next_id) for _ in range(max(1, args.oon_posts // 20))]
        oon_posts = [
            self._post_event(next(next_id), oon_authors[int(rng.integers(len(oon_authors)))], rng, DAY_MS)
            for _ in range(args.oon_posts)
        ]
        for event in oon_posts[::10]:
            event.update(media="video", video_duration_ms=int(rng.integers(2_000, 60_000)))
        authors = [next(next_id) for _ in range(args.followed)]
        in_network = [self._post_event(next(next_id), author, rng, HOUR_MS) for author in authors]
        for event in in_network[::10]:
            original = oon_posts[int(rng.integers(len(oon_posts)))]
            event.update(repost_of_post_id=original["post_id"], repost_of_user_id=original["author_id"], text="")
        events = (
            oon_posts
            + in_network
            + [{"type": "follower_delta", "author_id": author, "delta": args.users} for author in authors]
        )
        for start in range(0, len(events), _APPLY_BATCH):
            self.post_store.apply(events[start : start + _APPLY_BATCH], now_ms=self.now_ms)
        posts = [e for e in events if e["type"] == "create"]
        self.ranker.index.add_many([e["post_id"] for e in posts], [e["author_id"] for e in posts])
        self.ranker.index.flush()
        for user in self.users:
            for author in authors:
                graph.apply({"type": "follow", "user_id": user, "target_id": author, "keyword": None, "ts_ms": 0})
            for i in rng.choice(len(oon_posts), size=args.history, replace=False):
                post = oon_posts[int(i)]
                actions.record(
                    {
                        "user_id": user,
                        "post_id": post["post_id"],
                        "author_id": post["author_id"],
                        "action": ACTIONS[int(rng.integers(0, 11))],
                        "surface": "home_for_you",
                        "ts_ms": self.now_ms - int(rng.integers(1_000, DAY_MS)),
                        "dwell_ms": None,
                    }
                )
        self.service = FeedService(
            settings=Settings(policy="phoenix", data_dir=directory / "worker"),
            config=load_config(env={"FORYOU_PRESET": args.preset}),
            post_store=self.post_store,
            counts=self.counts,
            ranker=self.ranker,
            user_actions=actions,
            social_graph=graph,
            served_history=served,
            answered={},
            send_answer=_discard_answer,
            send_impressions=lambda user_id, impressions: None,
        )

    def _post_event(self, post_id: int, author_id: int, rng: np.random.Generator, max_age_ms: int) -> dict:
        return TweetCreate(
            post_id=post_id,
            author_id=author_id,
            created_at_ms=self.now_ms - int(rng.integers(1_000, max_age_ms)),
            text=f"post {post_id} about topic {post_id % 97}",
            conversation_id=post_id,
        ).to_dict()

    @property
    def pipeline(self) -> CandidatePipeline:
        return self.service.pipeline

    def close(self) -> None:
        self.post_store.close()
        self.counts.close()


async def _run(world: World, requests: int, warmup: int) -> tuple[list[float], dict[tuple[str, str], list[float]], int]:
    """Execute times (ms), each stage's reported times (ms), and the candidates of the last request."""
    total_ms: list[float] = []
    stage_ms: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    candidates = 0
    for i in range(warmup + requests):
        user_id = world.users[i % len(world.users)]
        request = FeedRequest(request_id=uuid.uuid4().hex, user_id=user_id, explain=True)
        query = feed_query(
            request, now_ms=int(time.time() * 1000), default_size=world.service.config.results.default_size
        )
        started = time.perf_counter()
        result = await world.pipeline.execute(query)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        await result.side_effects()
        assert result.stages is not None and not result.degraded, result.degraded
        if i < warmup:
            continue
        total_ms.append(elapsed_ms)
        for stage in result.stages:
            if stage.status == "ok":
                stage_ms[(stage.kind, stage.name)].append(stage.ms)
        candidates = sum(s.candidates_out for s in result.stages if s.kind == "source")
    return total_ms, dict(stage_ms), candidates


async def _run_concurrent(world: World, requests: int, in_flight: int) -> tuple[float, list[float]]:
    """Requests per second and each execute's time (ms) with `in_flight` executions always running."""
    latencies: list[float] = []
    issued = 0

    async def one_loop() -> None:
        nonlocal issued
        while issued < requests:
            user_id = world.users[issued % len(world.users)]
            issued += 1
            request = FeedRequest(request_id=uuid.uuid4().hex, user_id=user_id)
            query = feed_query(
                request, now_ms=int(time.time() * 1000), default_size=world.service.config.results.default_size
            )
            started = time.perf_counter()
            result = await world.pipeline.execute(query)
            latencies.append((time.perf_counter() - started) * 1000.0)
            assert not result.degraded, result.degraded
            await result.side_effects()

    started = time.perf_counter()
    await asyncio.gather(*(one_loop() for _ in range(in_flight)))
    return requests / (time.perf_counter() - started), latencies


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.quick:
        args.requests, args.warmup = 40, 5
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as directory:
        started = time.monotonic()
        world = World(Path(directory), args)
        tune_collector(Settings().gc_young_threshold)  # as a worker does once started
        print(f"world built in {time.monotonic() - started:.1f}s; running {args.requests} requests ...", flush=True)
        try:
            total_ms, stage_ms, candidates = asyncio.run(_run(world, args.requests, args.warmup))
            concurrent = {}
            batcher = world.ranker.batcher
            for batching, max_jobs in (("off", 1), ("on", batcher.max_jobs)):
                batcher.max_jobs = max_jobs
                before = (batcher.stats.jobs, batcher.stats.batches)
                rate, latencies = asyncio.run(_run_concurrent(world, args.requests, args.in_flight))
                jobs, batches = batcher.stats.jobs - before[0], batcher.stats.batches - before[1]
                concurrent[batching] = (rate, latencies, jobs / max(batches, 1))
        finally:
            world.close()
    params = {
        "users": args.users,
        "candidates": candidates,
        "history": args.history,
        "requests": args.requests,
        "model": world.ranker.version,
        "pipeline_preset": args.preset,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "note": "2-core machine shared with other work: see load_average (1, 5, 15 min)",
    }
    records = [
        record(
            "pipeline.inprocess.c1000",
            "median_ms",
            statistics.median(total_ms),
            "ms",
            LATENCY_TARGET_MEDIAN_MS,
            **params,
        ),
        record(
            "pipeline.inprocess.c1000",
            "p99_ms",
            float(np.percentile(total_ms, 99)),
            "ms",
            LATENCY_TARGET_P99_MS,
            **params,
        ),
    ]
    records += [
        record(f"pipeline.stage.{kind}.{name}", "median_ms", statistics.median(times), "ms", None, **params)
        for (kind, name), times in stage_ms.items()
    ]
    for batching, (rate, latencies, per_forward) in concurrent.items():
        extra = {"in_flight": args.in_flight, "batching": batching, "requests_per_forward": round(per_forward, 2)}
        records += [
            record("pipeline.inprocess.c1000.concurrent", "requests_per_s", rate, "requests/s", None,
                   **extra, **params),
            record("pipeline.inprocess.c1000.concurrent", "p95_ms", float(np.percentile(latencies, 95)), "ms",
                   None, **extra, **params),
        ]
    path = write_results("pipeline", records, args.out_dir) if args.out_dir else write_results("pipeline", records)
    for r in records:
        print(f"{r['name']:52} {r['metric']:14} {r['value']:9.2f} {r['unit']} {r['params'].get('batching', '')}")
    print(f"candidates per request: {candidates}; results in {path}")
    return 0
