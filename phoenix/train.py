"""Train the Phoenix ranker and retrieval towers (one params tree) on an engagement log.

    python -m phoenix.train --data LOG --out CHECKPOINT [--posts POSTS] [--config demo|large]
                            [--steps N | --epochs E] [--batch-size B] [--seed S]
                            [--semantic-id-levels L] [--semantic-id-size K]
                            [--weight-decay W] [--validation-fraction F] [--patience P]

- Split: request groups are ordered by time and the last `holdout_fraction` (10%) is held out for
  `phoenix.evaluate`; only earlier groups are trained on. Histories come from the whole log but only from
  lines strictly earlier than each request, so they never see the future.
- Regularisation: id dropout (`drop_ids`, `--id-dropout`; default 0.3 with content inputs, 0 without:
  `id_dropout_for`). Early stopping is optional
  (`--validation-fraction F`, off by default): the latest F of the train part is held out of training,
  the ranker loss on it is measured about 20 times per run, training stops after `patience` (4)
  measurements without improvement and the best params are kept (`--steps` / `--epochs` are then the
  maximum). Off by default because on the demo world's log, with id dropout on, the held-out tenth cost
  more than stopping saved (docs/phoenix-training.md).
- Negatives: a log without any non-engaged line gets sampled ones (`phoenix.examples.sample_negatives`,
  popularity-weighted from a recent window); the checkpoint meta says so.
- Content: with `--posts` (`phoenix.posts`), every post's content vector is computed (`phoenix.content`),
  semantic-ID codebooks are fitted on them (`phoenix.semantic_ids`, residual k-means, L levels of K codes)
  and saved in the checkpoint, and the config gets content inputs; without it, the config's architecture
  is the published one. The posts file also gives creation times to log lines that lack them. The content
  affinity inputs (`phoenix.affinity`; the served-posts rate unless `--no-served-affinity`) get bins fitted
  on the quantiles of their values over the training examples (`with_affinity_edges`; no labels read).
- Ages: with a config that has `age_buckets`, each candidate's post age at its impression (from the log's
  optional `post_created_at_ms`) is an input; a log without creation times trains with every age unknown.
- Negatives: the training part must hold lines without any positive action; a log whose training part
  has none (while the log has some elsewhere) is refused, since it would train to the base rate and rank
  nothing (a loss near 0 that means nothing).
- Loss (`phoenix.objective`): ranker = masked sigmoid BCE summed over the 19 action heads and averaged over
  real candidates (a mean over heads would leave the ranker's gradient ~19x weaker than retrieval's), plus
  `ranking_weight` times the within-request pairwise term (per head, engaged vs not-engaged candidates of
  the same request; what serving's ordering needs); retrieval = in-batch softmax of
  user_embedding . candidate_embedding / temperature, where each example's positive is one of its engaged
  candidates and the other examples' positives are its negatives (a batch row sharing the same post is not
  counted as a negative). Total = ranker + retrieval_weight * retrieval.
- Optimiser (`phoenix.optim`): AdamW, or the published recipe (Muon for dense layers, row-wise AdaGrad for
  the embedding tables), with linear warmup then cosine decay, gradients clipped to norm 1.
- Speed: a CPU pays for every padded history slot, and most logged histories are far shorter than S. So
  batches are bucketed by history length: the shuffled examples are taken 32 batches at a time, sorted by
  history length within that window and cut into batches, and each batch gets the smallest power of two
  (>= 8) of history slots covering its longest history, up to a cap (`history_slots`; by default the
  power of two covering 99% of the train histories; longer histories keep their newest entries). That is
  a handful of shapes [B, L, C], each compiled once. Batches are built on a background thread while the
  previous step runs. The user and history positions are encoded once and shared by the ranker head and
  the user tower.
"""

import argparse
import math
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import jax
import jax.numpy as jnp
import numpy as np
import optax

from phoenix import semantic_ids
from phoenix.affinity import fit_edges
from phoenix.batch import RankingBatch
from phoenix.checkpoint import save_checkpoint
from phoenix.config import CONFIGS, PhoenixConfig
from phoenix.content import load_encoder
from phoenix.examples import (
    HistoryIndex,
    NegativeSampling,
    RankingExample,
    RequestGroup,
    affinity_sample,
    ensure_negatives,
    examples_from_groups,
    examples_to_batch,
    group_requests,
    history_length_quantile,
    split_groups,
    split_time,
)
from phoenix.log import Impression, file_sha256, read_log
from phoenix.model import Params, candidate_embedding, forward, init_params, user_embedding_from_prefix
from phoenix.objective import masked_bce, within_request_pairwise
from phoenix.optim import make_optimiser
from phoenix.posts import ContentTable, PostRecord, encode_posts, iter_posts, with_creation_times

_NO_POSITIVE = -1


@dataclass(frozen=True)
class TrainOptions:
    steps: int | None = None  # exactly one of steps / epochs; neither means one epoch
    epochs: float | None = None
    batch_size: int = 64
    num_candidates: int = 8  # C: requests with more lines are cut into several examples
    seed: int = 0
    learning_rate: float = 2e-3  # AdamW (dense layers, or everything with optimiser "adamw")
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    optimiser: str = "adamw"  # phoenix.optim.OPTIMISERS
    muon_learning_rate: float = 0.02
    table_learning_rate: float = 0.05  # row-wise AdaGrad on the embedding tables
    holdout_fraction: float = 0.1
    ranking_weight: float = 1.0  # within-request pairwise term (phoenix.objective)
    retrieval_weight: float = 1.0
    temperature: float = 0.05  # both embeddings are unit vectors, so cosine / 0.05 spans [-20, 20]
    negatives: NegativeSampling = field(
        default_factory=lambda: NegativeSampling(per_positive=4, window_ms=3 * 3_600_000, seed=0)
    )
    history_slots: int | None = None  # cap on L; None = sized to the data (see the module docstring)
    # Early stopping: the latest `validation_fraction` of the train part (by time) is held out of training
    # and its loss measured every `eval_every` steps (0 = about 20 times per run); training stops after
    # `patience` measurements without improvement and keeps the best params. 0 = off (train every step).
    validation_fraction: float = 0.0
    # Probability that an id is hidden in a training batch (`drop_ids`); None = `id_dropout_for(cfg)`:
    # CONTENT_ID_DROPOUT for a model with content inputs, 0 for one whose ids are all it has.
    id_dropout: float | None = None
    eval_every: int = 0
    patience: int = 4
    progress: bool = True


@dataclass(frozen=True)
class PreparedData:
    """A log split and cut into examples, shared by training and evaluation."""

    impressions: list[Impression]
    sampling: NegativeSampling | None
    split_ts_ms: int
    history: HistoryIndex
    train_examples: list[RankingExample]
    held_out_examples: list[RankingExample]
    content: ContentTable | None = None  # the posts' content, when a posts file was given
    validation_examples: list[RankingExample] = field(default_factory=list)  # early stopping (end of train part)


def prepare(
    impressions: Sequence[Impression],
    num_candidates: int,
    holdout_fraction: float,
    negatives: NegativeSampling,
    split_ts_ms: int | None = None,
    content: ContentTable | None = None,
    validation_fraction: float = 0.0,
) -> PreparedData:
    """Sample negatives if needed, split by time (at `split_ts_ms` if given) and build examples; with a
    `validation_fraction`, the latest part of the training groups is set aside for early stopping."""
    log, sampling = ensure_negatives(impressions, negatives)
    groups = group_requests(log)
    split = split_ts_ms if split_ts_ms is not None else split_time(groups, holdout_fraction)
    train_groups, held_out_groups = split_groups(groups, split)
    if not train_groups or not held_out_groups:
        raise ValueError("the chronological split left the train or the held-out part empty")
    require_negatives(train_groups)
    validation_groups: list[RequestGroup] = []
    if validation_fraction:
        fit, validation_groups = split_groups(train_groups, split_time(train_groups, validation_fraction))
        if fit and validation_groups:
            train_groups = fit
            require_negatives(train_groups)
        else:
            validation_groups = []
    return PreparedData(
        impressions=log,
        sampling=sampling,
        split_ts_ms=split,
        history=HistoryIndex(log, served=sampling is None),  # sampled negatives were never shown
        train_examples=examples_from_groups(train_groups, num_candidates),
        held_out_examples=examples_from_groups(held_out_groups, num_candidates),
        content=content,
        validation_examples=examples_from_groups(validation_groups, num_candidates),
    )


class NoNegativesError(ValueError):
    """The training part has no line without a positive action: nothing to rank against."""


def require_negatives(train_groups: Sequence[RequestGroup]) -> None:
    lines = sum(len(group.impressions) for group in train_groups)
    negatives = sum(not imp.positive for group in train_groups for imp in group.impressions)
    if negatives == 0:
        raise NoNegativesError(
            f"the training part of the log ({lines} lines) holds no line without a positive action: a model "
            "trained on it learns only the base rate and cannot rank. Log the impressions that got no "
            'engagement ("actions": []), or give a log with engaged lines only, which gets sampled '
            "negatives."
        )


class ProgressBar:
    """A one-line progress bar redrawn in place on a terminal stream (at most 5 times a second)."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr  # looked up now, so redirects apply
        self.width = width
        self.started = time.monotonic()
        self._last_draw = 0.0

    def update(self, done: int, text: str = "") -> None:
        now = time.monotonic()
        if done < self.total and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done}/{self.total} {rate:.1f} it/s {_duration(elapsed)}<{_duration(eta)} {text}")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _retrieval_inputs(batch: RankingBatch, labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per example one engaged candidate (chosen at random) as the retrieval positive."""
    positive = labels.any(-1) & batch.candidate_mask  # [B, C]
    b = positive.shape[0]
    choice = np.full(b, _NO_POSITIVE, dtype=np.int64)
    for row in np.flatnonzero(positive.any(-1)):
        choice[row] = rng.choice(np.flatnonzero(positive[row]))
    index = np.maximum(choice, 0)
    post_hashes = batch.candidate_post_hashes[np.arange(b), index]
    author_hashes = batch.candidate_author_hashes[np.arange(b), index]
    # The same post positive in two rows must not be pushed apart; compare by hashes (ids are gone).
    same_post = (post_hashes[:, None, :] == post_hashes[None, :, :]).all(-1)
    inputs = {
        "post_hashes": post_hashes,
        "author_hashes": author_hashes,
        "valid": choice != _NO_POSITIVE,
        "same_post": same_post,
    }
    if batch.candidate_content is not None:
        inputs["content"] = batch.candidate_content[np.arange(b), index]
        inputs["semantic_ids"] = batch.candidate_semantic_ids[np.arange(b), index]
    return inputs


def make_loss_fn(
    cfg: PhoenixConfig, options: TrainOptions
) -> Callable[[Params, dict[str, Any]], tuple[jax.Array, tuple[jax.Array, jax.Array]]]:
    def loss_fn(params: Params, inputs: dict[str, Any]) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        batch = RankingBatch(**inputs["batch"])
        logits, prefix = forward(params, cfg, batch)  # the user tower below reuses the prefix
        labels = inputs["labels"]
        rank_loss = masked_bce(logits, labels, batch.candidate_mask)
        if options.ranking_weight:
            rank_loss += options.ranking_weight * within_request_pairwise(logits, labels, batch.candidate_mask)

        retrieval = inputs["retrieval"]
        users = user_embedding_from_prefix(params, cfg, prefix)
        posts = candidate_embedding(
            params,
            cfg,
            retrieval["post_hashes"],
            retrieval["author_hashes"],
            retrieval.get("content"),
            retrieval.get("semantic_ids"),
        )
        sims = users @ posts.T / options.temperature
        valid = retrieval["valid"]
        off_diagonal_duplicate = retrieval["same_post"] & ~jnp.eye(sims.shape[0], dtype=bool)
        sims = jnp.where(valid[None, :] & ~off_diagonal_duplicate, sims, -1e9)
        log_probs = jax.nn.log_softmax(sims, axis=-1)
        retrieval_loss = -jnp.sum(jnp.diagonal(log_probs) * valid) / jnp.maximum(jnp.sum(valid), 1)
        total = rank_loss + options.retrieval_weight * retrieval_loss
        return total, (rank_loss, retrieval_loss)

    return loss_fn


_SORT_WINDOW_BATCHES = 32  # batches per window sorted by history length (module docstring)


def history_slots_for(longest: int, cap: int) -> int:
    """The smallest power of two >= max(longest, 8), at most `cap`."""
    return min(cap, max(8, 1 << max(longest - 1, 0).bit_length()))


def _batches(
    cfg: PhoenixConfig, data: PreparedData, options: TrainOptions, total_steps: int, max_slots: int
) -> Iterator[dict[str, Any]]:
    """Training inputs for `total_steps` steps, epoch after epoch of shuffled train examples, bucketed by
    history length (module docstring)."""
    rng = np.random.default_rng(options.seed)
    examples = data.train_examples
    lengths = np.array([len(data.history.history(ex.user_id, ex.ts_ms, max_slots)) for ex in examples])
    window = options.batch_size * _SORT_WINDOW_BATCHES
    pending: list[np.ndarray] = []
    order = np.empty(0, dtype=np.int64)
    for _ in range(total_steps):
        if not pending:
            while order.size < window:
                order = np.concatenate([order, rng.permutation(len(examples))])
            chunk, order = order[:window], order[window:]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            pending = [chunk[i : i + options.batch_size] for i in range(0, window, options.batch_size)]
            rng.shuffle(pending)  # type: ignore[arg-type]
        chosen = pending.pop()
        inputs = training_inputs(
            cfg,
            [examples[i] for i in chosen],
            data.history,
            options.num_candidates,
            max_slots,
            rng,
            content=data.content,
        )
        rate = id_dropout_for(cfg, options)
        yield drop_ids(inputs, rate, rng) if rate else inputs


CONTENT_ID_DROPOUT = 0.3


def id_dropout_for(cfg: PhoenixConfig, options: TrainOptions) -> float:
    """The id-dropout rate: the option if set, else CONTENT_ID_DROPOUT with content inputs and 0 without.

    Hiding ids pays where the model has something else to score from (content) and the data is small
    enough to memorise: on the demo world's log (4 epochs) it took pairwise accuracy vs the truth from
    0.601 to 0.627 under early stopping. Where ids are the only signal and the budget is a fraction of an
    epoch it only slows learning: on 600k lines of real Higgs data (no text; 0.18 epochs) rate 0.3 cost
    0.706 -> 0.678 pairwise accuracy (docs/phoenix-training.md).
    """
    if options.id_dropout is not None:
        return options.id_dropout
    return CONTENT_ID_DROPOUT if cfg.has_content else 0.0


_ID_HASHES = ("user_hashes", "candidate_post_hashes", "candidate_author_hashes")
_HISTORY_ID_HASHES = ("post_hashes", "author_hashes")


def drop_ids(inputs: dict[str, Any], rate: float, rng: np.random.Generator) -> dict[str, Any]:
    """Id dropout (DropoutNet, Volkovs et al. 2017): each user, post and author id of a batch is replaced by
    "no id" (hash 0, a zero row) with probability `rate`, all its hashes at once. The model then has to
    score from the other inputs (content, age, the history's actions) as often as from memorised id rows,
    which is the situation of every fresh post and every new user at serving time, and ids of the few
    training impressions cannot carry the whole fit. Masks, content and labels are untouched."""

    def dropped(hashes: np.ndarray) -> np.ndarray:
        keep = rng.random(hashes.shape[:-1]) >= rate
        return hashes * keep[..., None]

    batch = dict(inputs["batch"])
    history = batch["history"]
    for name in _ID_HASHES:
        batch[name] = dropped(batch[name])
    batch["history"] = history._replace(**{name: dropped(getattr(history, name)) for name in _HISTORY_ID_HASHES})
    return {**inputs, "batch": batch}


def _prefetch(items: Iterator[dict[str, Any]], depth: int = 3) -> Iterator[dict[str, Any]]:
    """Build the next batches on a thread (numpy and hashing) while JAX runs the current step."""
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()

    def fill() -> None:
        try:
            for item in items:
                buffer.put(item)
        except BaseException as exc:  # surfaced in the consumer
            buffer.put(exc)
        buffer.put(done)

    threading.Thread(target=fill, daemon=True).start()
    while (item := buffer.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def total_steps_for(options: TrainOptions, num_examples: int) -> int:
    if options.steps is not None:
        return options.steps
    epochs = options.epochs if options.epochs is not None else 1.0
    return max(1, math.ceil(epochs * num_examples / options.batch_size))


def choose_history_slots(cfg: PhoenixConfig, data: PreparedData, options: TrainOptions) -> int:
    if options.history_slots is not None:
        return min(options.history_slots, cfg.history_len)
    covered = history_length_quantile(data.train_examples, data.history, cfg.history_len, 0.99)
    return history_slots_for(covered, cfg.history_len)


@dataclass(frozen=True)
class TrainResult:
    params: Params
    steps: int
    history_slots: int  # the cap; batches use powers of two up to it
    seconds: float
    loss_curve: list[tuple[int, float, float]]  # (step, ranker loss, retrieval loss), averaged per interval
    examples: int  # request examples trained on (steps x batch size)
    candidates: int  # real candidate lines among them (each one labelled impression)
    validation_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, validation ranker loss)
    best_step: int | None = None  # the step whose params were kept (early stopping); None = the last


def initial_params(cfg: PhoenixConfig, seed: int) -> Params:
    """Where training starts: `init_params` with the post-id table at zero.

    A post id's row learns only from that post's own impressions, and most posts a live feed serves were
    created after training (in the demo world 21% of held-out lines show a post never seen in training;
    a post is shown about 7 times in the whole 36-hour log). Rows drawn N(0, 1) stay unit-scale noise for those
    posts, as loud in the candidate token as the author's trained row; zero rows say nothing until a post
    has been seen, so an unseen post is scored by its author, age and (later) content. Measured on the
    demo world: pairwise accuracy vs the ground truth 0.571 -> 0.592 (docs/phoenix-training.md).
    """
    params = {module: dict(leaves) for module, leaves in init_params(cfg, jax.random.PRNGKey(seed)).items()}
    for leaves in params.values():
        if "post_table" in leaves:
            leaves["post_table"] = jnp.zeros_like(leaves["post_table"])
    return params


def optimiser_for(options: TrainOptions, steps: int | None) -> optax.GradientTransformation:
    """The options' optimiser over `steps` steps (None: no end, so constant learning rates)."""
    return make_optimiser(
        options.optimiser,
        steps,
        learning_rate=options.learning_rate,
        weight_decay=options.weight_decay,
        warmup_fraction=options.warmup_fraction,
        muon_learning_rate=options.muon_learning_rate,
        table_learning_rate=options.table_learning_rate,
    )


Step = Callable[[Params, Any, dict[str, Any]], tuple[Params, Any, jax.Array]]


def make_step(cfg: PhoenixConfig, options: TrainOptions, optimiser: optax.GradientTransformation) -> Step:
    """One jitted optimiser step: (params, optimiser state, inputs) -> (params, state, [ranker, retrieval])."""
    grad_fn = jax.value_and_grad(make_loss_fn(cfg, options), has_aux=True)

    @jax.jit
    def step(params: Params, opt_state: Any, inputs: dict[str, Any]) -> tuple[Params, Any, jax.Array]:
        (_, (rank_loss, retrieval_loss)), grads = grad_fn(params, inputs)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, jnp.stack([rank_loss, retrieval_loss])

    return step


def training_inputs(
    cfg: PhoenixConfig,
    examples: Sequence[RankingExample],
    history: HistoryIndex,
    num_candidates: int,
    max_slots: int,
    rng: np.random.Generator,
    sizes: Sequence[int] = (),
    content: ContentTable | None = None,
) -> dict[str, Any]:
    """One step's inputs. History slots: the smallest of `sizes` covering the longest history, else (no
    `sizes`, or none covers it) the power of two covering it; never more than max_slots. `content`: the
    posts' content (used by a config with content)."""
    longest = max(len(history.history(ex.user_id, ex.ts_ms, max_slots)) for ex in examples)
    covering = [size for size in sorted(sizes) if size >= longest]
    slots = min(covering[0], max_slots) if covering else history_slots_for(longest, max_slots)
    batch, labels = examples_to_batch(cfg, examples, history, num_candidates, slots, content)
    return {"batch": batch.as_dict(), "labels": labels, "retrieval": _retrieval_inputs(batch, labels, rng)}


def _validation_batches(
    cfg: PhoenixConfig, data: PreparedData, options: TrainOptions, max_slots: int
) -> list[dict[str, Any]]:
    """The validation examples as full batches (sorted by history length, so few shapes; the last batch is
    filled up with repeats of its own examples)."""
    examples = sorted(data.validation_examples, key=lambda ex: len(data.history.history(ex.user_id, ex.ts_ms)))
    rng = np.random.default_rng(options.seed)
    size = options.batch_size
    batches = []
    for start in range(0, len(examples), size):
        chunk = examples[start : start + size]
        chunk = (chunk * (size // len(chunk) + 1))[:size]
        inputs = training_inputs(cfg, chunk, data.history, options.num_candidates, max_slots, rng, content=data.content)
        batches.append({"batch": inputs["batch"], "labels": inputs["labels"], "retrieval": inputs["retrieval"]})
    return batches


def make_validation_loss(cfg: PhoenixConfig, options: TrainOptions) -> Callable[[Params, dict[str, Any]], jax.Array]:
    """The ranker part of the objective on one batch, without gradients."""
    loss_fn = make_loss_fn(cfg, options)
    return jax.jit(lambda params, inputs: loss_fn(params, inputs)[1][0])


def train_params(cfg: PhoenixConfig, data: PreparedData, options: TrainOptions) -> TrainResult:
    steps = total_steps_for(options, len(data.train_examples))
    history_slots = choose_history_slots(cfg, data, options)
    optimiser = optimiser_for(options, steps)
    params = initial_params(cfg, options.seed)
    opt_state = optimiser.init(params)
    step = make_step(cfg, options, optimiser)
    bar = ProgressBar(steps) if options.progress else None
    interval = max(1, steps // 50)
    curve: list[tuple[int, float, float]] = []
    pending: list[jax.Array] = []
    candidates = 0
    validation = _validation_batches(cfg, data, options, history_slots) if data.validation_examples else []
    validation_loss = make_validation_loss(cfg, options) if validation else None
    eval_every = options.eval_every or max(10, steps // 20)
    validation_curve: list[tuple[int, float]] = []
    best: tuple[float, int, Params] | None = None
    done = 0
    started = time.monotonic()
    for done, inputs in enumerate(_prefetch(_batches(cfg, data, options, steps, history_slots)), start=1):
        params, opt_state, losses = step(params, opt_state, inputs)
        candidates += int(inputs["batch"]["candidate_mask"].sum())
        pending.append(losses)
        if done % interval == 0 or done == steps:
            # Reading losses back forces a device sync, so do it once per interval, not every step.
            mean = np.asarray(jnp.stack(pending)).mean(0)
            pending = []
            curve.append((done, float(mean[0]), float(mean[1])))
            if bar is not None:
                bar.update(done, f"rank {mean[0]:.4f} retrieval {mean[1]:.3f}")
        if validation_loss is not None and (done % eval_every == 0 or done == steps):
            loss = float(np.mean([float(validation_loss(params, batch)) for batch in validation]))
            validation_curve.append((done, loss))
            if best is None or loss < best[0]:
                best = (loss, done, params)
            elif done - best[1] >= options.patience * eval_every:
                break  # no improvement for `patience` measurements
    if bar is not None and done < steps:
        bar.stream.write(f"\nearly stop at step {done}: best validation loss {best[0]:.4f} at step {best[1]}\n")
    return TrainResult(
        params=best[2] if best is not None else params,
        steps=done,
        history_slots=history_slots,
        seconds=time.monotonic() - started,
        loss_curve=curve,
        examples=done * options.batch_size,
        candidates=candidates,
        validation_curve=validation_curve,
        best_step=best[1] if best is not None else None,
    )


@dataclass(frozen=True)
class ContentOptions:
    """Semantic IDs fitted by training: `levels` of `size` codes (upstream: 6 x 256); 0 levels = none."""

    levels: int = 6
    size: int = 256
    seed: int = 0
    affinity_buckets: int = 16  # content affinity to the history (phoenix.affinity); 0 = none
    served_affinity: bool = True  # the affinity's engagement rate over served posts (phoenix.affinity)


@dataclass(frozen=True)
class FittedContent:
    cfg: PhoenixConfig  # the config with content inputs
    table: ContentTable  # every post's vector and semantic ids
    codebooks: np.ndarray | None  # [L, K, E]
    meta: dict[str, Any]


def fit_content(cfg: PhoenixConfig, posts: Sequence[PostRecord], options: ContentOptions) -> FittedContent:
    """Encode every post, fit the semantic-ID codebooks on the vectors, and turn the config's content on."""
    started = time.monotonic()
    encoder = load_encoder()
    table = encode_posts(posts, encoder)
    if not len(table.post_ids):
        raise ValueError("the posts file holds no posts")
    encode_seconds = time.monotonic() - started
    codebooks = None
    meta: dict[str, Any] = {"posts": len(table.post_ids), "encoder": encoder.encoder_id}
    if options.levels:
        codebooks = semantic_ids.fit_codebooks(table.vectors, options.levels, options.size, options.seed)
        known = table.vectors.any(1)
        table = table.with_semantic_ids(semantic_ids.model_ids(table.vectors, codebooks, known))
        errors = semantic_ids.reconstruction_error(table.vectors, codebooks)
        meta["semantic_id_residual_per_level"] = [round(float(e), 4) for e in errors]
        meta["semantic_id_distinct"] = len(np.unique(table.semantic_ids, axis=0))
    meta["encode_seconds"] = round(encode_seconds, 2)
    meta["fit_seconds"] = round(time.monotonic() - started - encode_seconds, 2)
    known = table.vectors.any(1)
    center = table.vectors[known].mean(0) if options.affinity_buckets and known.any() else np.zeros(0)
    content_cfg = replace(
        cfg,
        content_center=tuple(round(float(x), 6) for x in center),
        content_dim=encoder.dim,
        semantic_id_levels=options.levels,
        semantic_id_size=options.size,
        content_encoder=encoder.encoder_id,
        affinity_buckets=options.affinity_buckets,
        served_affinity=options.served_affinity and options.affinity_buckets > 0,
    )
    return FittedContent(content_cfg, table, codebooks, meta)


def with_affinity_edges(cfg: PhoenixConfig, data: PreparedData, num_candidates: int) -> PhoenixConfig:
    """The config with affinity bins fitted on the training examples' values (`phoenix.affinity.fit_edges`):
    equally filled bins resolve the range the inputs really take (no labels are read)."""
    equal_width = replace(cfg, affinity_edges=())
    values, known = affinity_sample(equal_width, data.train_examples, data.history, num_candidates, data.content)
    return replace(cfg, affinity_edges=fit_edges(values, known, cfg.affinity_buckets))


def train(
    data_path: Path,
    out: Path,
    cfg: PhoenixConfig,
    options: TrainOptions,
    posts_path: Path | None = None,
    content_options: ContentOptions = ContentOptions(),
) -> tuple[str, dict[str, Any]]:
    """Read, split, train, save; returns the checkpoint version and the meta written with it."""
    loaded = time.monotonic()
    impressions = read_log(data_path)
    fitted = None
    if posts_path is not None:
        posts = list(iter_posts(posts_path))
        impressions = with_creation_times(impressions, posts)
        fitted = fit_content(cfg, posts, content_options)
        cfg = fitted.cfg
    data = prepare(
        impressions,
        options.num_candidates,
        options.holdout_fraction,
        options.negatives,
        content=fitted.table if fitted is not None else None,
        validation_fraction=options.validation_fraction,
    )
    if cfg.affinity_buckets:
        cfg = with_affinity_edges(cfg, data, options.num_candidates)
    prepare_seconds = time.monotonic() - loaded
    result = train_params(cfg, data, options)
    meta: dict[str, Any] = {
        "data": str(data_path),
        "data_sha256": file_sha256(data_path),
        "posts": str(posts_path) if posts_path is not None else None,
        "posts_sha256": file_sha256(posts_path) if posts_path is not None else None,
        "content": fitted.meta if fitted is not None else None,
        "split_ts_ms": data.split_ts_ms,
        "holdout_fraction": options.holdout_fraction,
        "negatives_sampled": data.sampling.to_dict() if data.sampling is not None else None,
        "train_examples": len(data.train_examples),
        "validation_examples": len(data.validation_examples),
        "held_out_examples": len(data.held_out_examples),
        "steps": result.steps,
        "best_step": result.best_step,
        "validation_curve": [list(point) for point in result.validation_curve],
        "history_slots": result.history_slots,
        "id_dropout": id_dropout_for(cfg, options),
        "epochs": result.steps * options.batch_size / len(data.train_examples),
        "options": {k: v for k, v in asdict(options).items() if k not in ("negatives", "progress")},
        "final_loss": {"rank": result.loss_curve[-1][1], "retrieval": result.loss_curve[-1][2]},
        "loss_curve": [list(point) for point in result.loss_curve],
        "prepare_seconds": round(prepare_seconds, 2),
        "train_seconds": round(result.seconds, 2),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    codebooks = fitted.codebooks if fitted is not None else None
    version = save_checkpoint(out, jax.device_get(result.params), cfg, meta, codebooks=codebooks)
    return version, meta


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="engagement log (JSONL)")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint to write")
    parser.add_argument(
        "--posts", type=Path, help="posts file (JSONL post_id, author_id, text, media, created_at_ms): content inputs"
    )
    parser.add_argument("--semantic-id-levels", type=int, default=ContentOptions.levels, help="0: no semantic IDs")
    parser.add_argument("--semantic-id-size", type=int, default=ContentOptions.size, help="codes per level")
    parser.add_argument("--affinity-buckets", type=int, default=ContentOptions.affinity_buckets,
                        help="buckets per content-affinity cosine (0: no affinity input)")
    parser.add_argument("--no-served-affinity", action="store_true",
                        help="no affinity input from the served posts (the engagement rate on similar ones)")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="demo")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="optimiser steps")
    budget.add_argument("--epochs", type=float, help="passes over the train part (default 1)")
    parser.add_argument("--batch-size", type=int, default=TrainOptions.batch_size)
    parser.add_argument("--num-candidates", type=int, default=TrainOptions.num_candidates)
    parser.add_argument("--learning-rate", type=float, default=TrainOptions.learning_rate)
    parser.add_argument("--weight-decay", type=float, default=TrainOptions.weight_decay)
    parser.add_argument("--validation-fraction", type=float, default=TrainOptions.validation_fraction,
                        help="latest part of the train part held out for early stopping (default 0: off)")
    parser.add_argument("--id-dropout", type=float, default=None,
                        help=f"probability that each user, post and author id is hidden in a training batch "
                             f"(default {CONTENT_ID_DROPOUT} with --posts, 0 without)")
    parser.add_argument("--patience", type=int, default=TrainOptions.patience,
                        help="validation measurements without improvement before training stops")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = TrainOptions(
        steps=args.steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        num_candidates=args.num_candidates,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        validation_fraction=args.validation_fraction,
        patience=args.patience,
        id_dropout=args.id_dropout,
        seed=args.seed,
        negatives=NegativeSampling(per_positive=4, window_ms=3 * 3_600_000, seed=args.seed),
        progress=not args.no_progress,
    )
    try:
        content_options = ContentOptions(
            args.semantic_id_levels, args.semantic_id_size, args.seed, args.affinity_buckets,
            served_affinity=not args.no_served_affinity,
        )
        version, meta = train(args.data, args.out, CONFIGS[args.config], options, args.posts, content_options)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sampled = meta["negatives_sampled"]
    print(
        f"saved {args.out} version {version}: {meta['steps']} steps ({meta['epochs']:.2f} epochs) in "
        f"{meta['train_seconds']:.0f}s, final loss rank {meta['final_loss']['rank']:.4f} retrieval "
        f"{meta['final_loss']['retrieval']:.3f}; split at ts {meta['split_ts_ms']}; "
        + (f"negatives sampled {sampled}" if sampled else "negatives from the log")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
