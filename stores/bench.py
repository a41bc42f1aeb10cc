"""Micro-benchmark of the post store: apply throughput and the Thunder query for a user following 500 authors.

Synthetic data: `--posts` posts over the last two days by `--authors` authors whose activity is Zipf-like
(a few very active authors, a long tail), 60% originals (a tenth with video), 25% replies, 15% reposts,
applied in stream (time) order in batches with offsets, as the post-log replica does. Queries follow
`--following` authors drawn with the same activity weights (people follow active accounts more).

Writes `bench/results/stores.json`: a JSON list of {"name", "metric", "value", "unit", "target", "params", "at"}.
Usage: `python -m stores.bench [--posts N] [--authors N] [--following N] [--queries N] [--limit N] [--out PATH]`.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from foryou.benchmarks import record
from stores.post_store import PostStore
from topics.schemas import TweetCreate

DAY_MS = 86_400_000
NOW_MS = 1_700_000_000_000
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "bench" / "results" / "stores.json"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench stores", description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--authors", type=int, default=20_000)
    parser.add_argument("--following", type=int, default=500)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--limit", type=int, default=500, help="posts per query (the Thunder source's limit)")
    parser.add_argument("--batch", type=int, default=1_000, help="events per applied batch")
    parser.add_argument("--zipf", type=float, default=0.8, help="exponent of author activity")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def _author_weights(num_authors: int, exponent: float) -> np.ndarray:
    weights: np.ndarray = 1.0 / np.arange(1, num_authors + 1) ** exponent
    weights /= weights.sum()
    return weights


def _events(args: argparse.Namespace, weights: np.ndarray, rng: np.random.Generator) -> list[dict[str, Any]]:
    n = args.posts
    authors = rng.choice(args.authors, size=n, p=weights) + 1
    created = np.sort(NOW_MS - 2 * DAY_MS + rng.integers(0, 2 * DAY_MS, size=n))
    kinds = rng.random(n)
    video = rng.random(n) < 0.1
    events: list[dict[str, Any]] = []
    for i in range(n):
        post_id = i + 1
        event = TweetCreate(
            post_id=post_id,
            author_id=int(authors[i]),
            created_at_ms=int(created[i]),
            text=f"synthetic post {post_id}",
            conversation_id=post_id,
        ).to_dict()
        if i and kinds[i] >= 0.6:
            target = events[int(rng.integers(0, i))]
            if kinds[i] < 0.85:
                event["in_reply_to_post_id"] = target["post_id"]
                event["in_reply_to_user_id"] = target["author_id"]
                event["conversation_id"] = target["conversation_id"]
            else:
                event["repost_of_post_id"] = target["post_id"]
                event["repost_of_user_id"] = target["author_id"]
        elif video[i]:
            event["media"] = "video"
            event["video_duration_ms"] = 30_000
        events.append(event)
    return events


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv or [])
    rng = np.random.default_rng(args.seed)
    weights = _author_weights(args.authors, args.zipf)
    events = _events(args, weights, rng)
    data = {"posts": args.posts, "authors": args.authors, "zipf": args.zipf, "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="stores-bench-") as directory:
        store = PostStore(str(Path(directory) / "posts"))
        try:
            started, started_cpu = time.perf_counter(), time.process_time()
            for offset in range(0, len(events), args.batch):
                batch = events[offset : offset + args.batch]
                store.apply(batch, offsets={0: offset + len(batch)}, now_ms=NOW_MS)
            apply_s = time.perf_counter() - started
            apply_cpu_s = time.process_time() - started_cpu
            live = store.count()

            latencies_ms: list[float] = []
            cpu_ms: list[float] = []
            returned: list[int] = []
            for _ in range(args.queries):
                following = (rng.choice(args.authors, size=args.following, replace=False, p=weights) + 1).tolist()
                started, started_cpu = time.perf_counter(), time.process_time()
                posts = store.recent_posts(following, args.limit, now_ms=NOW_MS, viewer_id=0)
                latencies_ms.append((time.perf_counter() - started) * 1000)
                cpu_ms.append((time.process_time() - started_cpu) * 1000)
                returned.append(len(posts))
        finally:
            store.close()

    # Wall-clock numbers move with the load other processes put on the machine: record it alongside.
    machine = {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    records = [
        record(
            "stores.post_store.apply",
            "posts_per_s",
            args.posts / apply_s,
            "posts/s",
            None,
            **{
                **data,
                "batch": args.batch,
                "live_posts_after": live,
                "cpu_posts_per_s": round(args.posts / apply_cpu_s, 1),
                **machine,
            },
        ),
        record(
            "stores.post_store.recent_posts.f500",
            "median_ms",
            statistics.median(latencies_ms),
            "ms",
            None,
            **{
                **data,
                "following": args.following,
                "limit": args.limit,
                "queries": args.queries,
                "p90_ms": round(float(np.percentile(latencies_ms, 90)), 3),
                "mean_returned": round(statistics.fmean(returned), 1),
                "median_cpu_ms": round(statistics.median(cpu_ms), 3),
                **machine,
            },
        ),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(records, option=orjson.OPT_INDENT_2))
    for entry in records:
        print(f"{entry['name']}: {entry['value']} {entry['unit']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
