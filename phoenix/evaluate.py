"""Evaluate a checkpoint on the held-out (chronologically last) part of an engagement log.

    python -m phoenix.evaluate --checkpoint C --data LOG [--out JSON] [--bench JSON --bench-name NAME]

The split is the one recorded at training time (the same split time when the log's hash matches the
checkpoint meta; otherwise the same held-out fraction of this log), and a log without non-engaged lines
gets the negatives training sampled (same parameters and seed). Every metric is reported for the model and
two baselines scored on the same held-out examples:
- popularity: the candidate author's number of positive engagements in the train part only;
- random: uniform random scores (seeded).

Metrics (see phoenix.metrics; ties count as half right / are averaged over random orders):
- per-action AUC over all held-out candidates, for actions with held-out positives; the model uses that
  action's probability, the baselines their single score;
- NDCG@10 and pairwise accuracy within request groups having an engaged and a non-engaged line; relevance
  is "any non-negative action", the model's combined score is the sum of the probabilities of the
  non-negative actions (15 of the 19 heads);
- retrieval recall@10 and @100: for held-out groups with engaged lines (at most `--retrieval-queries`,
  evenly spaced), the share of engaged posts found among the top k of a corpus made of every distinct
  post shown in the held-out part, scored by user_embedding . candidate_embedding (the popularity
  baseline ranks the corpus by author popularity, the same list for every user).
A config with ages sees each candidate's post age at its impression, as in training.
Histories use up to S entries, as serving does; batches are bucketed by history length (a few compiles).
"""

import argparse
import functools
import itertools
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orjson

from phoenix.batch import RankingBatch, content_inputs
from phoenix.checkpoint import load_checkpoint
from phoenix.config import PhoenixConfig
from phoenix.examples import HistoryIndex, NegativeSampling, RankingExample, examples_to_batch
from phoenix.hashing import hash_ids
from phoenix.log import file_sha256, read_log
from phoenix.metrics import mean_ndcg_at_k, pairwise_accuracy, recall_at_k, roc_auc
from phoenix.model import Params, candidate_embedding, forward, user_embedding_from_prefix
from phoenix.posts import ContentTable, content_for_model, iter_posts, with_creation_times
from phoenix.train import PreparedData, prepare
from topics.actions import NEGATIVE_ACTIONS, PHOENIX_ACTIONS

POSITIVE_HEADS = np.array([name not in NEGATIVE_ACTIONS for name in PHOENIX_ACTIONS])
BASELINES = ("model", "popularity", "random")
RECALL_KS = (10, 100)


@functools.cache  # one jitted function per config, so repeated evaluations reuse the compiles
def _probabilities_and_users_fn(cfg: PhoenixConfig) -> Callable[[Params, RankingBatch], tuple[jax.Array, jax.Array]]:
    @jax.jit
    def probabilities_and_users(params: Params, batch: RankingBatch) -> tuple[jax.Array, jax.Array]:
        logits, prefix = forward(params, cfg, batch)
        return jax.nn.sigmoid(logits), user_embedding_from_prefix(params, cfg, prefix)

    return probabilities_and_users


@functools.cache
def _embed_fn(cfg: PhoenixConfig) -> Callable[..., jax.Array]:
    return jax.jit(functools.partial(candidate_embedding, cfg=cfg))


def embed_posts(
    params: Params,
    cfg: PhoenixConfig,
    post_ids: np.ndarray,
    author_ids: np.ndarray,
    content: ContentTable | None = None,
    chunk: int = 4096,
) -> np.ndarray:
    """Candidate-tower embeddings [N, R] of posts by id, in fixed-size chunks (the last padded: one compile)."""
    embed = _embed_fn(cfg)
    out = []
    for start in range(0, len(post_ids), chunk):
        posts, authors = post_ids[start : start + chunk], author_ids[start : start + chunk]
        rows = len(posts)
        padded_posts, padded_authors = np.pad(posts, (0, chunk - rows)), np.pad(authors, (0, chunk - rows))
        vectors, ids = content_inputs(cfg, content, padded_posts) if cfg.has_content else (None, None)
        emb = embed(
            params,
            post_hashes=hash_ids(padded_posts, "post", cfg),
            author_hashes=hash_ids(padded_authors, "author", cfg),
            content=vectors,
            semantic_ids=ids,
        )
        out.append(np.asarray(emb)[:rows])
    return np.concatenate(out)


def _bucketed(
    examples: Sequence[RankingExample], history: HistoryIndex, cfg: PhoenixConfig, batch_size: int
) -> Iterator[tuple[list[int], int]]:
    """Example indices in batches of similar history length, with the history slots of each batch."""
    lengths = np.array([len(history.history(ex.user_id, ex.ts_ms, cfg.history_len)) for ex in examples])
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size].tolist()
        longest = int(lengths[chunk].max())
        yield chunk, min(cfg.history_len, max(8, 1 << max(longest - 1, 0).bit_length()))


def model_outputs(
    params: Params, cfg: PhoenixConfig, data: PreparedData, num_candidates: int, batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities [N, C, 19] and user embeddings [N, R] for the held-out examples."""
    examples = data.held_out_examples
    probabilities_and_users = _probabilities_and_users_fn(cfg)
    probs = np.zeros((len(examples), num_candidates, len(PHOENIX_ACTIONS)), dtype=np.float32)
    users = np.zeros((len(examples), cfg.retrieval_dim), dtype=np.float32)
    for chunk, slots in _bucketed(examples, data.history, cfg, batch_size):
        # Pad the last batch of a bucket to the full batch size so that every bucket compiles once.
        padded = chunk + [chunk[-1]] * (batch_size - len(chunk))
        batch, _ = examples_to_batch(
            cfg, [examples[i] for i in padded], data.history, num_candidates, slots, data.content
        )
        batch_probs, batch_users = probabilities_and_users(params, batch)
        probs[chunk] = np.asarray(batch_probs)[: len(chunk)]
        users[chunk] = np.asarray(batch_users)[: len(chunk)]
    return probs, users


def author_popularity(data: PreparedData) -> Counter[int]:
    """Positive engagements per author in the train part only."""
    return Counter(imp.author_id for imp in data.impressions if imp.ts_ms < data.split_ts_ms and imp.positive)


def _ranking_metrics(
    scores_per_action: Callable[[int], np.ndarray],
    combined: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray,
    groups: np.ndarray,
) -> dict[str, Any]:
    """Metrics over flattened held-out candidates (rows of `labels` where `mask`)."""
    auc = {}
    for a, name in enumerate(PHOENIX_ACTIONS):
        y = labels[mask, a]
        if 0 < y.sum() < y.size:
            auc[name] = roc_auc(scores_per_action(a)[mask], y)
    relevant = (labels[mask] * POSITIVE_HEADS).any(-1)
    flat_groups = groups[mask]
    flat_scores = combined[mask]
    bounds = np.flatnonzero(np.r_[True, flat_groups[1:] != flat_groups[:-1], True])
    group_scores = [flat_scores[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    group_labels = [relevant[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    return {
        "auc": auc,
        "ndcg10": mean_ndcg_at_k(group_scores, group_labels, 10),
        "pairwise_accuracy": pairwise_accuracy(group_scores, group_labels),
    }


def _retrieval_metrics(
    cfg: PhoenixConfig,
    params: Params,
    data: PreparedData,
    users: np.ndarray,
    popularity: Counter[int],
    max_queries: int,
    rng: np.random.Generator,
) -> dict[str, dict[str, float]]:
    examples = data.held_out_examples
    corpus = list(dict.fromkeys(pair for ex in examples for pair in ex.candidates))
    corpus_index = {pair: i for i, pair in enumerate(corpus)}
    ids = np.array(corpus, dtype=np.int64)
    corpus_emb = embed_posts(params, cfg, ids[:, 0], ids[:, 1], data.content)
    # Queries: one per held-out group with engaged lines (its chunks share user and time).
    relevant_by_group: dict[int, set[int]] = {}
    first_example: dict[int, int] = {}
    for n, ex in enumerate(examples):
        first_example.setdefault(ex.group, n)
        for pair, row in zip(ex.candidates, ex.labels, strict=True):
            if (row * POSITIVE_HEADS).any():
                relevant_by_group.setdefault(ex.group, set()).add(corpus_index[pair])
    query_groups = sorted(relevant_by_group)
    if len(query_groups) > max_queries:
        query_groups = [query_groups[i] for i in np.linspace(0, len(query_groups) - 1, max_queries).astype(int)]
    pop_scores = np.array([popularity.get(author, 0) for _, author in corpus], dtype=np.float64)
    results: dict[str, dict[str, list[float]]] = {name: {f"recall{k}": [] for k in RECALL_KS} for name in BASELINES}
    for group in query_groups:
        relevant = np.zeros(len(corpus), dtype=bool)
        relevant[list(relevant_by_group[group])] = True
        scores = {
            "model": corpus_emb @ users[first_example[group]],
            "popularity": pop_scores,
            "random": rng.random(len(corpus)),
        }
        for name, score in scores.items():
            for k in RECALL_KS:
                results[name][f"recall{k}"].append(recall_at_k(score, relevant, k))
    summary = {name: {key: float(np.mean(values)) for key, values in per.items()} for name, per in results.items()}
    summary["_counts"] = {"queries": len(query_groups), "corpus": len(corpus)}
    return summary


def evaluate(
    checkpoint_path: Path,
    data_path: Path,
    seed: int = 0,
    max_queries: int = 2000,
    batch_size: int = 128,
    posts_path: Path | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    ckpt = load_checkpoint(checkpoint_path)
    meta, cfg = ckpt.meta, ckpt.cfg
    params = jax.device_put(ckpt.params)
    same_data = meta.get("data_sha256") == file_sha256(data_path)
    num_candidates = int(meta.get("options", {}).get("num_candidates", 8))
    sampled = meta.get("negatives_sampled")
    negatives = NegativeSampling(**sampled) if sampled else NegativeSampling(4, 3 * 3_600_000, seed)
    impressions = read_log(data_path)
    content = None
    if posts_path is not None:
        posts = list(iter_posts(posts_path))
        impressions = with_creation_times(impressions, posts)
        if cfg.has_content:
            content = content_for_model(cfg, ckpt.codebooks, posts)
    elif cfg.has_content:
        raise ValueError("this checkpoint reads post content: give the posts file (--posts)")
    data = prepare(
        impressions,
        num_candidates,
        float(meta.get("holdout_fraction", 0.1)),
        negatives,
        split_ts_ms=int(meta["split_ts_ms"]) if same_data else None,
        content=content,
    )
    examples = data.held_out_examples
    probs, users = model_outputs(params, cfg, data, num_candidates, batch_size)
    labels = np.zeros((len(examples), num_candidates, len(PHOENIX_ACTIONS)), dtype=np.float32)
    mask = np.zeros((len(examples), num_candidates), dtype=bool)
    popularity_scores = np.zeros((len(examples), num_candidates))
    groups = np.repeat(np.array([ex.group for ex in examples]), num_candidates).reshape(len(examples), -1)
    popularity = author_popularity(data)
    for n, ex in enumerate(examples):
        labels[n, : len(ex.candidates)] = ex.labels
        mask[n, : len(ex.candidates)] = True
        popularity_scores[n, : len(ex.candidates)] = [popularity.get(author, 0) for _, author in ex.candidates]
    rng = np.random.default_rng(seed)
    random_scores = rng.random(mask.shape)
    metrics = {
        "model": _ranking_metrics(lambda a: probs[..., a], (probs * POSITIVE_HEADS).sum(-1), labels, mask, groups),
        "popularity": _ranking_metrics(lambda a: popularity_scores, popularity_scores, labels, mask, groups),
        "random": _ranking_metrics(lambda a: random_scores, random_scores, labels, mask, groups),
    }
    retrieval = _retrieval_metrics(cfg, params, data, users, popularity, max_queries, rng)
    counts = retrieval.pop("_counts")
    for name in BASELINES:
        metrics[name].update(retrieval[name])
    held_out_lines = int(mask.sum())
    return {
        "checkpoint": str(checkpoint_path),
        "version": ckpt.version,
        "config": cfg.name,
        "data": str(data_path),
        "data_matches_training": same_data,
        "split_ts_ms": data.split_ts_ms,
        "negatives_sampled": data.sampling.to_dict() if data.sampling else None,
        "held_out": {
            "groups": len({ex.group for ex in examples}),
            "examples": len(examples),
            "lines": held_out_lines,
            "engaged_lines": int((labels[mask] * POSITIVE_HEADS).any(-1).sum()),
            "retrieval_queries": counts["queries"],
            "retrieval_corpus": counts["corpus"],
        },
        "combined_score": "sum of the probabilities of the 15 non-negative actions",
        "metrics": metrics,
        "seconds": round(time.monotonic() - started, 1),
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def metric_rows(report: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """(metric name, value per baseline) in a stable order; AUCs for actions the model was scored on."""
    metrics = report["metrics"]
    rows = [
        (f"auc.{name}", {b: metrics[b]["auc"].get(name, float("nan")) for b in BASELINES})
        for name in metrics["model"]["auc"]
    ]
    for key in ("ndcg10", "pairwise_accuracy", *(f"recall{k}" for k in RECALL_KS)):
        rows.append((key, {b: metrics[b][key] for b in BASELINES}))
    return rows


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'metric':<24}{'model':>10}{'popularity':>12}{'random':>10}"]
    for key, values in metric_rows(report):
        lines.append(
            f"{key:<24}" + "".join(f"{values[b]:>{w}.4f}" for b, w in zip(BASELINES, (10, 12, 10), strict=True))
        )
    return "\n".join(lines)


def bench_records(report: dict[str, Any], dataset: str) -> list[dict[str, Any]]:
    """Benchmark records {"name","metric","value","unit","target","params","at"} for every metric row."""
    held_out = report["held_out"]
    records = []
    for key, values in metric_rows(report):
        for baseline in BASELINES:
            records.append(
                {
                    "name": f"eval.{dataset}.{key}",
                    "metric": key.split(".")[0],
                    "value": values[baseline],
                    "unit": "ratio",
                    "target": None,
                    "params": {
                        "baseline": baseline,
                        "checkpoint_version": report["version"],
                        "config": report["config"],
                        "held_out_groups": held_out["groups"],
                        "held_out_lines": held_out["lines"],
                        "split_ts_ms": report["split_ts_ms"],
                    },
                    "at": report["evaluated_at"],
                }
            )
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foryou eval", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="the engagement log trained on")
    parser.add_argument("--posts", type=Path, help="the posts file (required for a checkpoint trained with one)")
    parser.add_argument("--out", type=Path, help="write the full report here (JSON)")
    parser.add_argument("--bench", type=Path, help="also write benchmark records here (JSON list)")
    parser.add_argument("--bench-name", default="log", help="dataset name in benchmark record names")
    parser.add_argument("--retrieval-queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        report = evaluate(args.checkpoint, args.data, args.seed, args.retrieval_queries, posts_path=args.posts)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not report["data_matches_training"]:
        print("warning: the log differs from the one trained on; split recomputed", file=sys.stderr)
    print(format_table(report))
    held_out = report["held_out"]
    print(f"held out: {held_out['groups']} groups, {held_out['lines']} lines; {report['seconds']}s")
    options = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(orjson.dumps(report, option=options))
    if args.bench:
        args.bench.parent.mkdir(parents=True, exist_ok=True)
        args.bench.write_bytes(orjson.dumps(bench_records(report, args.bench_name), option=options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
