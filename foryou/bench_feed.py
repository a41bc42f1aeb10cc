"""`foryou bench feed`: end-to-end feed latency and throughput over the real broker with one worker.

A world of U users, each following F authors with one fresh post each (the in-network candidates) and with a
full history of engagements; a corpus of out-of-network posts for retrieval. With the default sources
(Thunder 500, retrieval 500) every request ranks about 1,000 candidates with history 128. Latency is from
producing the request to consuming its answer, measured by the client; throughput is requests answered per
second while a batch is sent back to back.
"""

import argparse
import os
import statistics
import time
import uuid
from pathlib import Path

import numpy as np

from foryou.benchmarks import record, write_results
from foryou.client import FeedClient, unique_ids
from foryou.kafka_local import LocalKafka
from foryou.processes import WorkerProcess
from foryou.settings import state_dir
from topics.actions import ACTIONS

LATENCY_TARGET_MEDIAN_MS = 30.0
LATENCY_TARGET_P99_MS = 100.0
THROUGHPUT_TARGET = 50.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench feed", description=__doc__)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--followed", type=int, default=500, help="authors each user follows (one post each)")
    parser.add_argument("--oon-posts", type=int, default=20_000, help="out-of-network posts for retrieval")
    parser.add_argument("--history", type=int, default=128)
    parser.add_argument("--requests", type=int, default=300, help="sequential requests timed for latency")
    parser.add_argument("--burst", type=int, default=400, help="requests sent back to back for throughput")
    parser.add_argument("--checkpoint", default="", help="a Phoenix checkpoint (default: untrained)")
    parser.add_argument("--quick", action="store_true", help="a short run (fewer requests)")
    parser.add_argument("--out-dir", type=Path, default=None)
    return parser.parse_args(argv)


def _populate(client: FeedClient, args: argparse.Namespace, rng: np.random.Generator) -> tuple[list[int], int]:
    """Users, follows, posts and histories; returns the users and the number of posts produced."""
    ids = unique_ids()
    now = int(time.time() * 1000)
    users = [next(ids) for _ in range(args.users)]
    authors = [next(ids) for _ in range(args.followed)]
    for author in authors:
        client.post(next(ids), author, created_at_ms=now - int(rng.integers(1_000, 3_600_000)), text="in network")
    oon_authors = [next(ids) for _ in range(max(1, args.oon_posts // 20))]
    oon_posts: list[tuple[int, int]] = []
    for _ in range(args.oon_posts):
        author = oon_authors[int(rng.integers(len(oon_authors)))]
        post = next(ids)
        oon_posts.append((post, author))
        client.post(post, author, created_at_ms=now - int(rng.integers(1_000, 86_400_000)), text="out of network")
    for user in users:
        for author in authors:
            client.follow(user, author)
        for i in rng.choice(len(oon_posts), size=args.history, replace=False):
            post, author = oon_posts[int(i)]
            action = ACTIONS[int(rng.integers(0, 11))]
            client.engage(user, post, author, action, ts_ms=now - int(rng.integers(1_000, 86_400_000)))
    client.flush(120)
    return users, args.followed + args.oon_posts


def _wait_for_posts(worker: WorkerProcess, count: int, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = worker.status() or {}
        if status.get("ready") and status.get("posts", 0) >= count:
            return
        time.sleep(0.5)
    raise TimeoutError(f"worker holds {(worker.status() or {}).get('posts')} of {count} posts")


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.quick:
        args.requests, args.burst = 60, 100
    # Its own empty broker unless KAFKA_BOOTSTRAP names one: a new consumer group reads the public topics
    # from the beginning, and history left by other runs would be measured as backlog.
    broker = LocalKafka(state_dir() / "kafka-bench")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    started_broker = not bootstrap
    if not bootstrap:
        bootstrap = broker.start(fresh=True)
    run = state_dir() / "bench" / f"feed-{uuid.uuid4().hex[:8]}"
    env = {"FORYOU_POLICY": "phoenix", "FORYOU_CHECKPOINT": args.checkpoint}
    worker = WorkerProcess(
        bootstrap=bootstrap, app_id=f"foryou-bench-{uuid.uuid4().hex[:8]}", data_dir=run / "data",
        log_path=run / "worker.log", env=env,
    )
    rng = np.random.default_rng(0)
    try:
        with FeedClient(bootstrap) as client:
            started = time.monotonic()
            worker.start()
            join_s = worker.wait_ready(timeout_s=300)
            print(f"worker ready in {join_s:.1f}s; producing the world ...", flush=True)
            users, posts = _populate(client, args, rng)
            _wait_for_posts(worker, posts)
            worker.wait_caught_up(timeout_s=600)
            print(f"world ingested in {time.monotonic() - started:.1f}s; warming up ...", flush=True)
            explained = client.request(users[0], explain=True, max_results=50, timeout_s=120)
            sources = {
                s["name"]: s["out"] for s in explained["explain"]["stages"] if s["kind"] == "source"
            }
            for i in range(20):
                client.request(users[i % len(users)], timeout_s=60)

            e2e_ms: list[float] = []
            server_ms: list[float] = []
            for i in range(args.requests):
                t0 = time.perf_counter()
                answer = client.request(users[i % len(users)], timeout_s=60)
                e2e_ms.append((time.perf_counter() - t0) * 1000)
                server_ms.append(answer["latency_ms"])
                assert answer["status"] == "ok", answer

            t0 = time.perf_counter()
            pending = [client.send_request(users[i % len(users)]) for i in range(args.burst)]
            for request_id in pending:
                client.wait(request_id, timeout_s=120)
            throughput = args.burst / (time.perf_counter() - t0)
    finally:
        worker.stop()
        if started_broker:
            broker.stop()

    candidates = sum(sources.values())
    params = {
        "users": args.users, "candidates": candidates, "sources": sources, "history": args.history,
        "requests": args.requests, "model": explained["model"], "worker_join_s": round(join_s, 2),
        "server_median_ms": round(statistics.median(server_ms), 2),
    }
    records = [
        record("feed.e2e.c1000", "median_ms", statistics.median(e2e_ms), "ms", LATENCY_TARGET_MEDIAN_MS, **params),
        record("feed.e2e.c1000", "p99_ms", _percentile(e2e_ms, 99), "ms", LATENCY_TARGET_P99_MS, **params),
        record("feed.throughput.c1000", "requests_per_s", throughput, "requests/s", THROUGHPUT_TARGET,
               burst=args.burst, candidates=candidates, model=explained["model"]),
    ]
    path = write_results("feed", records, args.out_dir) if args.out_dir else write_results("feed", records)
    for r in records:
        print(f"{r['name']:24} {r['metric']:15} {r['value']:10.2f} {r['unit']:12} target {r['target']}")
    print(f"candidates per request: {sources}; results in {path}")
    return 0
