"""Phoenix benchmarks: ranking latency and throughput, and two-tower retrieval speed and recall.

Run as `python -m phoenix.bench [--quick]` (or `foryou bench phoenix`). Writes a JSON list of records
{"name", "metric", "value", "unit", "target", "params", "at"} to bench/results/phoenix.json.

- rank.s128.c{32,256,1000}: `Ranker.score` with the DEMO config, a full history of 128 and 32, 256 or
  1,000 candidates per request; median and p99 over repeated calls, compile time (first call minus a
  steady call), FLOPs per request from XLA's cost analysis of the compiled prefix and candidate programs
  (as executed, i.e. including bucket padding), and the achieved GFLOP/s at the median.
- matmul.peak: best-of-N float32 1024x1024 (2048 in the full run) matmul in the same process, jitted.
- retrieval.{exact,ann}.{100k,1m}: top-100 over a corpus of untrained-DEMO candidate-tower embeddings of
  synthetic posts (authors Zipf-distributed over 50k accounts, so posts by one author share their author
  rows), queries from the user tower on random histories; recall@100 of the ANN path against exact, the
  smallest probed share of IVF cells that meets the recall bound (sweep in params), and near_* metrics for
  queries close to posts (as a trained user tower's are) at that setting.
- train.examples_per_s: training throughput with the default recipe (`phoenix.train.TrainOptions`: the DEMO
  config with the content inputs `foryou train --posts` adds (content vector, semantic IDs 6 x 256, content
  affinity), objective, optimiser, history bucketing and batch prefetch of `foryou train`) on a synthetic log
  (`phoenix.examples.synthetic_log`, 64k lines, histories up to ~60 entries; random unit content vectors
  and semantic ids per post: the cost does not depend on their values), in labelled impressions
  (candidate lines, each one training example of the 19 heads) per second, after one warm-up step per history
  shape (compiles excluded); params also give request sequences per second and the process's CPU seconds
  per wall second (other load on a shared machine shows as less than 2 on 2 cores).
"""

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from foryou.benchmarks import record
from phoenix.batch import Candidates
from phoenix.config import DEMO
from phoenix.index import RECALL_BOUND, AnnConfig
from phoenix.ranker import HOME, Ranker, _stub_content
from stores.records import ActionEntry

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "bench" / "results" / "phoenix.json"
RANK_TARGET_MS = {1000: 15.0}
TRAIN_TARGET = 1000.0  # examples/s: enough to keep up with a worker's impression stream
ANN_TARGET_MS = 5.0
NPROBE_FRACTION_SWEEP = (0.125, 0.25, 0.375, 0.5, 0.75)


def _timings(fn: Callable[[], object], repeats: int) -> np.ndarray:
    out = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - start
    return out * 1000.0


def _history(rng: np.random.Generator, n: int) -> list[ActionEntry]:
    return [
        ActionEntry(
            post_id=int(rng.integers(1, 10**12)),
            author_id=int(rng.integers(1, 50_000)),
            action_mask=int(rng.integers(1, 1 << 19)),
            surface="home_for_you",
            ts_ms=i,
        )
        for i in range(n)
    ]


def matmul_peak(size: int, repeats: int) -> float:
    a = jnp.asarray(np.random.default_rng(0).standard_normal((size, size), dtype=np.float32))
    mm = jax.jit(lambda x: x @ x)
    mm(a).block_until_ready()
    best = min(_timings(lambda: mm(a).block_until_ready(), repeats)) / 1000.0
    return 2 * size**3 / best / 1e9


def _request_flops(ranker: Ranker, history: list[ActionEntry], size: int) -> float:
    state = ranker._state
    folded = ranker._prefix(state, 1, history)
    hashes = np.ones((size, state.cfg.num_hashes), np.int32)
    ages = np.ones(size, np.int32) if state.cfg.age_buckets else None
    vectors, ids = _stub_content(state.cfg, size)
    affinity = np.zeros((size, state.cfg.num_affinity_inputs), np.int32) if state.cfg.affinity_buckets else None
    candidates = Candidates(hashes, hashes, np.int32(HOME), ages, vectors, ids, affinity)
    score = state.fns.score.lower(state.weights, folded, candidates).compile()
    prefix = state.fns.prefix.lower(state.prefix_weights, *ranker.prefix_args(state, 1, history)).compile()
    return float(score.cost_analysis()["flops"]) + float(prefix.cost_analysis()["flops"])


def bench_rank(quick: bool) -> list[dict[str, Any]]:
    records = []
    peak = matmul_peak(1024 if quick else 2048, 5 if quick else 10)
    records.append(record("matmul.peak", "gflops", peak, "GFLOP/s", None, dtype="float32"))
    ranker = Ranker.untrained(DEMO, seed=0, candidate_buckets=(32, 256, 1024))
    rng = np.random.default_rng(0)
    history = _history(rng, DEMO.history_len)
    repeats = 30 if quick else 300
    for count in (32, 256, 1000):
        candidates = [(int(rng.integers(1, 10**12)), int(rng.integers(1, 50_000))) for _ in range(count)]
        start = time.perf_counter()
        ranker.score(7, history, candidates)
        first_ms = (time.perf_counter() - start) * 1000.0
        times = _timings(lambda c=candidates: ranker.score(7, history, c), repeats)
        median, p99 = float(np.median(times)), float(np.percentile(times, 99))
        flops = _request_flops(ranker, history, 1024 if count == 1000 else count)
        name = f"rank.s128.c{count}"
        params = {"config": "demo", "history": DEMO.history_len, "candidates": count, "repeats": repeats}
        records += [
            record(name, "median_ms", median, "ms", RANK_TARGET_MS.get(count), **params),
            record(name, "p99_ms", p99, "ms", None, **params),
            record(name, "compile_ms", max(first_ms - median, 0.0), "ms", None, **params),
            record(name, "gflops", flops / median / 1e6, "GFLOP/s", None, flops=flops, flops_source="xla"),
        ]
        print(f"{name}: median {median:.2f} ms, p99 {p99:.2f} ms, {flops / median / 1e6:.1f} GFLOP/s", flush=True)
    print(f"matmul.peak: {peak:.1f} GFLOP/s", flush=True)
    return records


def _near_post_queries(emb: np.ndarray, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Queries close to some post (as a trained user tower's are): a post's vector plus a little noise."""
    picked = emb[rng.choice(len(emb), count, replace=False)]
    noisy = picked + 0.3 / np.sqrt(emb.shape[1]) * rng.standard_normal(picked.shape).astype(np.float32)
    return list(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))


def _ann_pass(ranker: Ranker, queries: list[np.ndarray], truths: list[set[int]]) -> tuple[float, float]:
    """Median ms and mean recall@100 of the ANN path against the exact top-100 sets."""
    ann_ms, recalls = [], []
    for query, truth in zip(queries, truths, strict=True):
        start = time.perf_counter()
        found = ranker.index.search(query, 100, mode="ann")
        ann_ms.append((time.perf_counter() - start) * 1000.0)
        recalls.append(len(truth & {p for p, _, _ in found}) / 100)
    return float(np.median(ann_ms)), float(np.mean(recalls))


def bench_retrieval(size: int, label: str, queries: int) -> list[dict[str, Any]]:
    ranker = Ranker.untrained(DEMO, seed=0, ann=AnnConfig(min_size=min(size, 50_000)))
    rng = np.random.default_rng(1)
    post_ids = np.arange(1, size + 1, dtype=np.int64) * 7_919 + 13
    author_ids = (rng.zipf(1.3, size) % 50_000 + 1).astype(np.int64)
    start = time.perf_counter()
    ranker.index.add_many(post_ids.tolist(), author_ids.tolist())
    ranker.index.flush()
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    ranker.index.maintain()
    build_s = time.perf_counter() - start
    users = [ranker.user_embedding(int(u), _history(rng, DEMO.history_len)) for u in range(1, queries + 1)]
    near = _near_post_queries(ranker.index.corpus.emb[:size], rng, queries)
    exact_ms, truths = [], []
    for query in users:
        start = time.perf_counter()
        truths.append({p for p, _, _ in ranker.index.search(query, 100, mode="exact")})
        exact_ms.append((time.perf_counter() - start) * 1000.0)
    near_truths = [{p for p, _, _ in ranker.index.search(query, 100, mode="exact")} for query in near]
    # Sweep the share of cells probed for the user-tower queries; report the smallest that meets the recall
    # bound (else the largest tried), and what that setting gives for queries near the posts.
    sweep = []
    for fraction in NPROBE_FRACTION_SWEEP:
        ranker.index.ann = dataclasses.replace(ranker.index.ann, nprobe_fraction=fraction)
        median_ms, recall = _ann_pass(ranker, users, truths)
        sweep.append({"nprobe_fraction": fraction, "median_ms": median_ms, "recall_at_100": recall})
        if recall >= RECALL_BOUND:
            break
    chosen = sweep[-1]
    near_ms, near_recall = _ann_pass(ranker, near, near_truths)
    ann, index = ranker.index.ann, ranker.index.corpus.ann
    assert index is not None
    nprobe = ann.probes(index.nlist)
    params = {"posts": size, "dim": DEMO.retrieval_dim, "k": 100, "queries": queries}
    ann_params = {**params, "index": f"IVF{index.nlist},PQ{DEMO.retrieval_dim}x4fs", "nprobe": nprobe}
    ann_params |= {"nprobe_fraction": ann.nprobe_fraction, "refine_factor": ann.refine_factor, "faiss_threads": 1}
    ann_params |= {"build_s": build_s, "embed_s": embed_s, "sweep": sweep}
    print(
        f"retrieval {label}: embed {embed_s:.1f} s, ANN build {build_s:.1f} s, exact {np.median(exact_ms):.2f} ms, "
        f"ann {chosen['median_ms']:.2f} ms at nprobe={nprobe}/{index.nlist}, recall@100 {chosen['recall_at_100']:.4f}"
        f" (queries near posts: {near_ms:.2f} ms, recall@100 {near_recall:.4f})",
        flush=True,
    )
    return [
        record(f"retrieval.exact.{label}", "median_ms", float(np.median(exact_ms)), "ms", None, **params),
        record(f"retrieval.exact.{label}", "recall_at_100", 1.0, "ratio", None, **params),
        record(f"retrieval.ann.{label}", "median_ms", chosen["median_ms"], "ms", ANN_TARGET_MS, **ann_params),
        record(f"retrieval.ann.{label}", "recall_at_100", chosen["recall_at_100"], "ratio", RECALL_BOUND, **ann_params),
        record(f"retrieval.ann.{label}", "near_median_ms", near_ms, "ms", ANN_TARGET_MS, **ann_params),
        record(f"retrieval.ann.{label}", "near_recall_at_100", near_recall, "ratio", RECALL_BOUND, **ann_params),
    ]


def bench_train(quick: bool) -> list[dict[str, Any]]:
    from phoenix.content import CONTENT_DIM, ENCODER_ID
    from phoenix.examples import synthetic_log
    from phoenix.posts import ContentTable
    from phoenix.train import (
        TrainOptions,
        _batches,
        _prefetch,
        choose_history_slots,
        id_dropout_for,
        initial_params,
        make_step,
        optimiser_for,
        prepare,
    )

    options = TrainOptions(progress=False)
    log = synthetic_log(num_users=200, num_authors=100, requests_per_user=40, seed=0)
    cfg = dataclasses.replace(DEMO, content_dim=CONTENT_DIM, semantic_id_levels=6, semantic_id_size=256,
                              content_encoder=ENCODER_ID, affinity_buckets=16)
    rng = np.random.default_rng(0)
    post_ids = np.unique([line.post_id for line in log])
    vectors = rng.standard_normal((post_ids.size, CONTENT_DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = rng.integers(1, 257, (post_ids.size, 6)).astype(np.int32)
    content = ContentTable(post_ids, vectors, ids)
    data = prepare(log, options.num_candidates, options.holdout_fraction, options.negatives, content=content)
    steps = 40 if quick else 200
    slots = choose_history_slots(cfg, data, options)
    optimiser = optimiser_for(options, steps)
    params = initial_params(cfg, 0)
    state = optimiser.init(params)
    step = make_step(cfg, options, optimiser)
    batches = list(_batches(cfg, data, options, steps, slots))
    shapes = {}
    for inputs in batches:  # warm-up: compile every history shape once
        shapes.setdefault(inputs["batch"]["history"].mask.shape[1], inputs)
    for inputs in shapes.values():
        jax.block_until_ready(step(params, state, inputs))
    candidates = sum(int(inputs["batch"]["candidate_mask"].sum()) for inputs in batches)
    cpu, start = time.process_time(), time.perf_counter()
    losses = None
    for inputs in _prefetch(_batches(cfg, data, options, steps, slots)):  # as training runs: built on a thread
        params, state, losses = step(params, state, inputs)
    jax.block_until_ready(losses)
    seconds = time.perf_counter() - start
    cpu_per_s = (time.process_time() - cpu) / seconds
    rate = candidates / seconds
    params_ = {
        "config": "demo + content (6 x 256 semantic IDs, affinity 16)", "batch_size": options.batch_size,
        "num_candidates": options.num_candidates,
        "steps": steps, "history_shapes": sorted(shapes), "optimiser": options.optimiser,
        "ranking_weight": options.ranking_weight, "id_dropout": id_dropout_for(cfg, options),
        "requests_per_s": round(steps * options.batch_size / seconds, 1),
        "cpu_seconds_per_s": round(cpu_per_s, 2), "load_average_1m": os.getloadavg()[0],
        "example": "one labelled impression (candidate line)",
    }
    print(f"train: {rate:.0f} examples/s ({params_['requests_per_s']} requests/s), CPU {cpu_per_s:.2f} s/s, "
          f"load {params_['load_average_1m']:.1f}", flush=True)
    return [record("train.examples_per_s", "examples_per_s", rate, "examples/s", TRAIN_TARGET, **params_)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foryou bench phoenix", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 100k-post corpus only")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only-train", action="store_true",
                        help="only the training benchmark (its records replace their namesakes in --out)")
    args = parser.parse_args(argv)
    if args.only_train:
        records = bench_train(args.quick)
        kept = json.loads(args.out.read_text()) if args.out.exists() else []
        records = [r for r in kept if r["name"] != "train.examples_per_s"] + records
    else:
        records = bench_rank(args.quick)
        records += bench_retrieval(100_000, "100k", 20 if args.quick else 100)
        if not args.quick:
            records += bench_retrieval(1_000_000, "1m", 100)
        records += bench_train(args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(records, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {len(records)} records to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
