"""`foryou bench feed`: end-to-end feed latency and throughput over the real broker, one worker then two.

A world of U users, each following F authors with one fresh post each (the in-network candidates) and with a
full history of engagements; a corpus of out-of-network posts for retrieval. The worker runs the
seed-2026-01 preset's sources (Thunder 500, retrieval 500; `--preset`), so every request ranks about 1,000
candidates with history 128. Latency is from producing the request to consuming its answer, measured by the
client. Records:
- `feed.e2e.c1000` median and p99: one request at a time;
- `feed.throughput.c1000`: requests answered per second while `--burst` requests are sent with `--window`
  (48) outstanding at most: saturating, yet under the worker's in-flight bound (`FORYOU_MAX_IN_FLIGHT`, 64),
  past which a request is answered "overloaded" at once and would not measure ranking;
- `feed.e2e.c1000.loaded` p50 and p95: a closed loop keeping `--in-flight` (24) requests outstanding;
- `feed.throughput.c1000.2workers`: the burst again once a second worker of the same group has joined, with
  its ratio over the one-worker figure of the same run.
Each record's params carry the machine's load average when it was measured (the benchmark shares the
machine with whatever else runs) and the worker's own median latency.
"""

import argparse
import os
import statistics
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import wait as wait_futures
from pathlib import Path

import numpy as np

from foryou.benchmarks import record, write_results
from foryou.client import Answer, FeedClient, new_feed_request, unique_ids
from foryou.kafka_local import LocalKafka
from foryou.processes import WorkerProcess
from foryou.settings import state_dir
from topics.actions import ACTIONS

LATENCY_TARGET_MEDIAN_MS = 30.0
LATENCY_TARGET_P99_MS = 100.0
THROUGHPUT_TARGET = 50.0
LOADED_TARGET_P95_MS = 500.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench feed", description=__doc__)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--followed", type=int, default=500, help="authors each user follows (one post each)")
    parser.add_argument("--oon-posts", type=int, default=20_000, help="out-of-network posts for retrieval")
    parser.add_argument("--history", type=int, default=128)
    parser.add_argument("--requests", type=int, default=300, help="sequential requests timed for latency")
    parser.add_argument("--burst", type=int, default=400, help="requests sent for the throughput runs")
    parser.add_argument("--window", type=int, default=48, help="requests outstanding at most in the throughput runs")
    parser.add_argument("--in-flight", type=int, default=24, help="requests kept outstanding for the loaded run")
    parser.add_argument("--loaded", type=int, default=600, help="requests answered in the loaded run")
    parser.add_argument("--preset", default="seed-2026-01",
                        help="pipeline preset (seed-2026-01 keeps the c1000 records' 500 + 500 candidates)")
    parser.add_argument("--no-second-worker", action="store_true", help="skip the two-worker throughput")
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


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _send(client: FeedClient, user_id: int) -> Future[Answer]:
    """Produce a feed request without waiting for the broker's ack (the client's linger batches them)."""
    request = new_feed_request(user_id)
    answer = client.expect(request.request_id)
    client.send(request)
    return answer


def _closed_loop(client: FeedClient, users: list[int], in_flight: int, count: int) -> tuple[list[float], float]:
    """Latencies (ms) of `count` requests with `in_flight` always outstanding (each answer sends the next),
    and the requests answered per second meanwhile."""
    t0 = time.perf_counter()
    sent: dict[Future[Answer], float] = {}
    latencies: list[float] = []
    issued = 0

    def issue() -> None:
        nonlocal issued
        sent[_send(client, users[issued % len(users)])] = time.perf_counter()
        issued += 1

    while issued < min(in_flight, count):
        issue()
    client.flush(60)
    while sent:
        done, _ = wait_futures(list(sent), timeout=120, return_when=FIRST_COMPLETED)
        if not done:
            raise TimeoutError(f"{len(sent)} requests unanswered for 120 s")
        now = time.perf_counter()
        for answer in done:
            latencies.append((now - sent.pop(answer)) * 1000)
            assert answer.result()["status"] == "ok", answer.result()
            if issued < count:
                issue()
        client.flush(60)
    return latencies, count / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.quick:
        args.requests, args.burst, args.loaded = 60, 100, 150
    # Its own empty broker unless KAFKA_BOOTSTRAP names one: a new consumer group reads the public topics
    # from the beginning, and history left by other runs would be measured as backlog.
    broker = LocalKafka(state_dir() / "kafka-bench")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    started_broker = not bootstrap
    if not bootstrap:
        bootstrap = broker.start(fresh=True)
    run = state_dir() / "bench" / f"feed-{uuid.uuid4().hex[:8]}"
    env = {"FORYOU_POLICY": "phoenix", "FORYOU_CHECKPOINT": args.checkpoint, "FORYOU_PRESET": args.preset}
    app_id = f"foryou-bench-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(
        bootstrap=bootstrap, app_id=app_id, data_dir=run / "data", log_path=run / "worker.log", env=env,
    )
    second = WorkerProcess(
        bootstrap=bootstrap, app_id=app_id, data_dir=run / "data-2", log_path=run / "worker-2.log", env=env,
    )
    rng = np.random.default_rng(0)
    loads: dict[str, list[float]] = {}
    two_workers: float | None = None
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
            loads["e2e"] = _load()
            for i in range(args.requests):
                t0 = time.perf_counter()
                answer = client.request(users[i % len(users)], timeout_s=60)
                e2e_ms.append((time.perf_counter() - t0) * 1000)
                server_ms.append(answer["latency_ms"])
                assert answer["status"] == "ok", answer
            loads["throughput"] = _load()
            throughput = _closed_loop(client, users, args.window, args.burst)[1]
            loads["loaded"] = _load()
            loaded_ms, loaded_rate = _closed_loop(client, users, args.in_flight, args.loaded)
            print(f"one worker: {throughput:.1f} requests/s; starting a second ...", flush=True)
            if not args.no_second_worker:
                second.start()
                second.wait_ready(timeout_s=300)
                _wait_for_posts(second, posts)
                for member in (worker, second):
                    member.wait_ready(timeout_s=300)
                    member.wait_caught_up(timeout_s=600)
                for i in range(40):  # both warm, and the group settled after the rebalance
                    client.request(users[i % len(users)], timeout_s=120)
                loads["2workers"] = _load()
                two_workers = _closed_loop(client, users, args.window, args.burst)[1]
    finally:
        second.stop()
        worker.stop()
        if started_broker:
            broker.stop()

    candidates = sum(sources.values())
    params = {
        "users": args.users, "candidates": candidates, "sources": sources, "history": args.history,
        "pipeline_preset": args.preset, "model": explained["model"], "worker_join_s": round(join_s, 2),
        "cores": os.cpu_count(), "note": "machine shared with other work: see load_average (1, 5, 15 min)",
    }
    records = [
        record("feed.e2e.c1000", "median_ms", statistics.median(e2e_ms), "ms", LATENCY_TARGET_MEDIAN_MS,
               requests=args.requests, server_median_ms=round(statistics.median(server_ms), 2),
               load_average=loads["e2e"], **params),
        record("feed.e2e.c1000", "p99_ms", _percentile(e2e_ms, 99), "ms", LATENCY_TARGET_P99_MS,
               requests=args.requests, server_p99_ms=round(_percentile(server_ms, 99), 2),
               load_average=loads["e2e"], **params),
        record("feed.throughput.c1000", "requests_per_s", throughput, "requests/s", THROUGHPUT_TARGET,
               burst=args.burst, window=args.window, load_average=loads["throughput"], **params),
        record("feed.e2e.c1000.loaded", "p50_ms", _percentile(loaded_ms, 50), "ms", None,
               in_flight=args.in_flight, requests=args.loaded, load_average=loads["loaded"], **params),
        record("feed.e2e.c1000.loaded", "p95_ms", _percentile(loaded_ms, 95), "ms", LOADED_TARGET_P95_MS,
               in_flight=args.in_flight, requests=args.loaded,
               requests_per_s=round(loaded_rate, 2),
               load_average=loads["loaded"], **params),
    ]
    if two_workers is not None:
        records.append(
            record("feed.throughput.c1000.2workers", "requests_per_s", two_workers, "requests/s", None,
                   burst=args.burst, window=args.window, one_worker_requests_per_s=round(throughput, 2),
                   ratio_over_one_worker=round(two_workers / throughput, 3),
                   partitions=int(os.environ.get("FORYOU_PARTITIONS", "4")), load_average=loads["2workers"],
                   **params)
        )
    path = write_results("feed", records, args.out_dir) if args.out_dir else write_results("feed", records)
    for r in records:
        target = r["target"] if r["target"] is not None else "-"
        print(f"{r['name']:32} {r['metric']:15} {r['value']:10.2f} {r['unit']:12} target {target}")
    print(f"candidates per request: {sources}; results in {path}")
    return 0
