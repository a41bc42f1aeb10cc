"""`foryou bench dpp`: the DPP re-ranker's cost at 150 candidates (benchmark `dpp.c150`).

Times `DppReranker.score` (window 150 -> 50, theta 0.65, the production-2026-10 preset) over `--candidates`
scored candidates with random unit content embeddings of `--dim` floats (384: all-MiniLM-L6-v2's width, the
largest the content issue considers), after a warm-up. The added cost of the stage is its whole time: the
other scorers do not change with it. Also times the greedy MAP alone, and CPU time, because wall time moves
with whatever else runs on this shared machine (the load average is recorded in the params).

Writes `bench/results/dpp.json` (the documented record format).
"""

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from foryou.benchmarks import RESULTS_DIR, record, write_results
from scoring.dpp import DppReranker, greedy_map
from streams.candidate import Candidate
from streams.config import load_config
from streams.query import FeedQuery

TARGET_MS = 5.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench dpp", description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=150)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    rng = np.random.default_rng(args.seed)
    config = load_config(env={"FORYOU_PRESET": "production-2026-10"}).dpp
    reranker = DppReranker(config)
    embeddings = rng.normal(size=(args.candidates, args.dim)).astype(np.float32)
    candidates = [
        Candidate(post_id=i + 1, author_id=i % 40 + 1, source="thunder", score=float(s),
                  content_embedding=embeddings[i])
        for i, s in enumerate(rng.random(args.candidates) + 0.001)
    ]
    query = FeedQuery(user_id=1, request_id="bench", max_results=35, now_ms=0)
    wall_ms, cpu_ms, map_ms = [], [], []
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    weights = np.exp(rng.random(min(args.candidates, config.window)))
    for run in range(args.warmup + args.runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        updates = _score(reranker, query, candidates)
        elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        started = time.perf_counter()
        greedy_map(weights, unit[: weights.size].astype(np.float64), config.max_selected, config.min_residual)
        map_elapsed = time.perf_counter() - started
        if run >= args.warmup:
            wall_ms.append(elapsed * 1000)
            cpu_ms.append(elapsed_cpu * 1000)
            map_ms.append(map_elapsed * 1000)
    selected = sum(outcome == "selected" for outcome in updates["dpp_outcome"])
    params = {
        "candidates": args.candidates, "window": config.window, "max_selected": config.max_selected,
        "theta": config.theta, "embedding_dim": args.dim, "runs": args.runs, "selected": selected,
        "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        "note": "shared 2-core machine, other jobs running: wall times are noisy",
    }
    median = statistics.median(wall_ms)
    records = [
        record("dpp.c150", "median_ms", median, "ms", TARGET_MS, **params),
        record("dpp.c150", "p99_ms", _percentile(wall_ms, 99), "ms", None, **params),
        record("dpp.c150", "median_cpu_ms", statistics.median(cpu_ms), "ms", None, **params),
        record("dpp.c150.greedy_map", "median_ms", statistics.median(map_ms), "ms", None, **params),
    ]
    path = write_results("dpp", records, args.out_dir)
    print(f"dpp.c150: median {median:.2f} ms (target <= {TARGET_MS} ms), p99 {_percentile(wall_ms, 99):.2f} ms, "
          f"greedy MAP alone {statistics.median(map_ms):.2f} ms, {selected} selected; load {params['load_average_1m']}")
    print(f"wrote {path}")
    return 0


def _score(reranker: DppReranker, query: FeedQuery, candidates: list[Candidate]) -> dict[str, Any]:
    """One scorer call as the pipeline makes it (the coroutine runs to completion without awaiting)."""
    coroutine = reranker.score(query, candidates)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return dict(done.value)
    raise RuntimeError("the DPP scorer awaited something")
