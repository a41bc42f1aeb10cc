"""Learning from the stream: served impressions joined with the engagements they got, trained on as they come.

`ImpressionJoiner` turns the two streams into engagement-log lines (`phoenix.log.Impression`):
- each impression (one served post of one feed) waits `window_ms` on the trainer's clock from when it was
  read; an engagement read meanwhile on the same (user, post) joins the latest such impression served at or
  before it (the served post itself: a repost engaged is the repost); when the window closes the impression
  becomes a line whose actions are the joined engagements, or none: a served post without engagement
  within the window is a negative. The window runs on the trainer's clock, not the events' timestamps, so
  producers' clocks (a client's own clock runs ahead while it reads) cannot close or stretch it; the two
  topics are read by one consumer, so a backlog is read at about the same pace on both.
- an engagement with no pending impression (served by another surface, before the trainer started, or
  after the window closed) is still part of the user's history: it becomes a history-only line (no
  request id, never a training example); `foryou trainer` counts them.

`OnlineTrainer` keeps the recent lines and builds examples and histories with the very functions offline
training uses (`group_requests`, `examples_from_groups`, `HistoryIndex`, `phoenix.train.training_inputs`
and the same jitted step and objective), so whatever offline examples carry (post ages, content features)
online ones carry too. Per new batch of lines it first scores them with the current params (progressive
validation: AUC of the summed positive-head probabilities against "any positive action", on lines the
model has not trained on), then adds their examples to a buffer of recent examples; `train` runs the steps
owed (`passes` visits per new example on average, batches drawn uniformly from the buffer). The learning
rate is constant (training has no end); the optimiser is the offline one.

`OnlineContent` gives a model that reads post content (trained offline with a posts file) the same inputs
online: each post from the post log is embedded by the encoder the checkpoint names (a repost takes its
original's vector) and turned into semantic ids with the checkpoint's codebooks, which the trainer keeps
and publishes unchanged (they are fitted once, offline; the optimiser does not train them).
"""

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from phoenix import semantic_ids
from phoenix.batch import RankingBatch
from phoenix.checkpoint import save_checkpoint
from phoenix.config import PhoenixConfig
from phoenix.content import ContentEncoder, media_index
from phoenix.examples import HistoryIndex, RankingExample, examples_from_groups, group_requests
from phoenix.log import Impression
from phoenix.metrics import roc_auc
from phoenix.model import Params, rank_logits
from phoenix.posts import ContentTable
from phoenix.train import TrainOptions, initial_params, make_step, optimiser_for, training_inputs
from topics.actions import ACTION_INDEX, NEGATIVE_ACTIONS, PHOENIX_ACTIONS

POSITIVE_HEADS = np.array([name not in NEGATIVE_ACTIONS for name in PHOENIX_ACTIONS])  # the model's heads
SURFACE = "home_for_you"


@dataclass(frozen=True, slots=True)
class PostFacts:
    """What the trainer knows of a post from the post log."""

    created_at_ms: int
    target_post_id: int  # the original for a repost (the model scores a repost as its original)
    target_author_id: int


@dataclass(slots=True)
class _Pending:
    request_id: str
    user_id: int
    post_id: int
    author_id: int
    served_at_ms: int
    read_at_ms: float
    actions: set[str] = field(default_factory=set)


class ImpressionJoiner:
    """Impressions wait `window_ms` for their engagements (module docstring)."""

    def __init__(self, window_ms: int) -> None:
        if window_ms <= 0:
            raise ValueError("window_ms must be positive")
        self.window_ms = window_ms
        self._queue: deque[_Pending] = deque()  # in read order, so also in window-closing order
        self._by_pair: dict[tuple[int, int], list[_Pending]] = {}

    @property
    def pending(self) -> int:
        return len(self._queue)

    def add_impression(
        self, request_id: str, user_id: int, post_id: int, author_id: int, served_at_ms: int, read_at_ms: float
    ) -> None:
        pending = _Pending(request_id, user_id, post_id, author_id, served_at_ms, read_at_ms)
        self._queue.append(pending)
        self._by_pair.setdefault((user_id, post_id), []).append(pending)

    def add_engagement(self, user_id: int, post_id: int, action: str, ts_ms: int) -> bool:
        """Join to the latest pending impression of (user, post) served at or before ts (else the earliest
        pending one: clocks differ); False when none is pending."""
        if action not in ACTION_INDEX:
            raise ValueError(f"unknown action {action!r}")
        candidates = self._by_pair.get((user_id, post_id))
        if not candidates:
            return False
        before = [p for p in candidates if p.served_at_ms <= ts_ms]
        (before[-1] if before else candidates[0]).actions.add(action)
        return True

    def close_windows(self, now_ms: float) -> list[_Pending]:
        """Impressions whose window has closed, in read order."""
        closed = []
        while self._queue and now_ms - self._queue[0].read_at_ms >= self.window_ms:
            pending = self._queue.popleft()
            pair = (pending.user_id, pending.post_id)
            siblings = self._by_pair[pair]
            siblings.remove(pending)
            if not siblings:
                del self._by_pair[pair]
            closed.append(pending)
        return closed


def log_line(pending: _Pending, posts: Mapping[int, PostFacts]) -> Impression:
    """A closed impression as an engagement-log line: the model's target post, its creation time if known."""
    facts = posts.get(pending.post_id)
    post_id, author_id = pending.post_id, pending.author_id
    if facts is not None:
        post_id, author_id = facts.target_post_id, facts.target_author_id
    return Impression(
        user_id=pending.user_id,
        post_id=post_id,
        author_id=author_id,
        ts_ms=pending.served_at_ms,
        surface=SURFACE,
        actions=tuple(sorted(pending.actions, key=ACTION_INDEX.__getitem__)),
        request_id=pending.request_id,
        post_created_at_ms=None if facts is None else facts.created_at_ms,
    )


def history_line(
    user_id: int, post_id: int, author_id: int, action: str, surface: str, ts_ms: int, posts: Mapping[int, PostFacts]
) -> Impression:
    """An engagement no impression was waiting for: history only (no request id, never an example)."""
    facts = posts.get(post_id)
    if facts is not None:
        post_id, author_id = facts.target_post_id, facts.target_author_id
    return Impression(user_id, post_id, author_id, ts_ms, surface, (action,), None)


class OnlineContent:
    """Content vectors and semantic ids of the posts read so far, as a `ContentTable` for the example builder.

    Posts are queued as they are read and embedded in one encoder call when the table is next needed (the
    encoder is fast per post but has a per-call cost). A repost takes its original's vector when the
    original has been read. `forget` drops posts (past retention, as the worker's post store does).
    """

    def __init__(self, cfg: PhoenixConfig, encoder: ContentEncoder, codebooks: np.ndarray | None) -> None:
        if cfg.content_encoder != encoder.encoder_id:
            raise ValueError(
                f"the model was trained on {cfg.content_encoder!r} content vectors, this encoder computes "
                f"{encoder.encoder_id!r}"
            )
        if (codebooks is not None) != bool(cfg.semantic_id_levels):
            raise ValueError("a config with semantic IDs needs its codebooks, and only such a config has them")
        self.encoder = encoder
        self.codebooks = codebooks
        self._vectors: dict[int, np.ndarray] = {}
        self._queued: list[tuple[int, str, str, int | None]] = []
        self._table: ContentTable | None = None

    def __len__(self) -> int:
        return len(self._vectors) + len(self._queued)

    def add(self, post_id: int, text: str, media: str, repost_of_post_id: int | None = None) -> None:
        """Queue a post; an unknown media kind is refused here (ValueError), not in a later batch."""
        media_index(media)
        self._queued.append((post_id, text, media, repost_of_post_id))

    def forget(self, keep: Callable[[int], bool]) -> None:
        self._embed_queued()
        self._vectors = {post_id: v for post_id, v in self._vectors.items() if keep(post_id)}
        self._table = None

    def _embed_queued(self) -> None:
        if not self._queued:
            return
        queued, self._queued = self._queued, []
        vectors = self.encoder.encode([text for _, text, _, _ in queued], [media for _, _, media, _ in queued])
        for (post_id, _, _, original), vector in zip(queued, vectors, strict=True):
            shown = self._vectors.get(original) if original is not None else None
            self._vectors[post_id] = shown if shown is not None else vector
        self._table = None

    def table(self) -> ContentTable:
        self._embed_queued()
        if self._table is None:
            ids = np.fromiter(sorted(self._vectors), np.int64, len(self._vectors))
            vectors = np.zeros((len(ids), self.encoder.dim), np.float32)
            for row, post_id in enumerate(ids.tolist()):
                vectors[row] = self._vectors[post_id]
            table = ContentTable(ids, vectors)
            if self.codebooks is not None and len(ids):
                table = table.with_semantic_ids(semantic_ids.model_ids(vectors, self.codebooks, vectors.any(1)))
            self._table = table
        return self._table


@dataclass(frozen=True)
class WindowReport:
    """Progressive validation on lines the model had not trained on."""

    lines: int
    positives: int
    auc: float  # NaN when the lines are all positive or all negative


@dataclass(frozen=True)
class OnlineOptions:
    buffer_examples: int = 20_000  # recent examples batches are drawn from
    history_lines: int = 500_000  # recent lines kept for histories (and examples)
    passes: float = 4.0  # training visits per new example, on average
    batch_size: int = 64
    score_batch: int = 64  # examples per progressive-validation forward (padded: one shape per history size)
    # History slots per batch: the smallest of these covering the batch's longest history, else the config's
    # S. Few sizes, few compiled programs (each a minute on a loaded 2-core machine); short ones are cheap.
    history_sizes: tuple[int, ...] = (32,)


class OnlineTrainer:
    """Incremental Phoenix training on lines as they close (module docstring)."""

    def __init__(
        self,
        cfg: PhoenixConfig,
        train_options: TrainOptions,
        options: OnlineOptions | None = None,
        params: Params | None = None,
        content: OnlineContent | None = None,
    ) -> None:
        if cfg.has_content and content is None:
            raise ValueError("a model that reads post content needs the posts' content (OnlineContent)")
        self.cfg = cfg
        self.content = content if cfg.has_content else None
        self.train_options = train_options
        self.options = options or OnlineOptions()
        self.params = params if params is not None else initial_params(cfg, train_options.seed)
        optimiser = optimiser_for(train_options, None)
        self.opt_state = optimiser.init(self.params)
        self._step = make_step(cfg, train_options, optimiser)
        self._score = jax.jit(lambda params, batch: jax.nn.sigmoid(rank_logits(params, cfg, batch)))
        self._lines: deque[Impression] = deque(maxlen=self.options.history_lines)
        self._history: HistoryIndex | None = None
        self._buffer: deque[RankingExample] = deque(maxlen=self.options.buffer_examples)
        self._rng = np.random.default_rng(train_options.seed)
        self._owed_steps = 0.0
        self.steps = 0
        self.examples_seen = 0
        self.last_losses: tuple[float, float] | None = None

    @property
    def owed_steps(self) -> int:
        return int(self._owed_steps)

    def _history_index(self) -> HistoryIndex:
        if self._history is None:
            self._history = HistoryIndex(self._lines)
        return self._history

    def observe_history(self, lines: Iterable[Impression]) -> None:
        """Engagements without an impression: histories only."""
        self._lines.extend(lines)
        self._history = None

    def observe(self, lines: Sequence[Impression]) -> WindowReport | None:
        """New closed lines: scored first (progressive validation), then queued for training."""
        served = [line for line in lines if line.request_id is not None]
        self._lines.extend(lines)
        self._history = None
        if not served:
            return None
        examples = examples_from_groups(group_requests(served), self.train_options.num_candidates)
        report = self._validate(examples)
        self._buffer.extend(examples)
        self.examples_seen += len(examples)
        self._owed_steps += self.options.passes * len(examples) / self.options.batch_size
        return report

    def _validate(self, examples: Sequence[RankingExample]) -> WindowReport:
        history = self._history_index()
        scores, labels = [], []
        size = self.options.score_batch
        for start in range(0, len(examples), size):
            chunk = list(examples[start : start + size])
            real = len(chunk)
            chunk += [chunk[-1]] * (size - real)  # one shape per history bucket
            inputs = self._inputs(chunk, history)
            probs = np.asarray(self._score(self.params, RankingBatch(**inputs["batch"])))
            for row, example in enumerate(chunk[:real]):
                n = len(example.candidates)
                scores.append(probs[row, :n][:, POSITIVE_HEADS].sum(-1))
                labels.append((example.labels[:, POSITIVE_HEADS] > 0).any(-1))
        score_array, label_array = np.concatenate(scores), np.concatenate(labels)
        return WindowReport(int(label_array.size), int(label_array.sum()), roc_auc(score_array, label_array))

    def _inputs(self, examples: Sequence[RankingExample], history: HistoryIndex) -> dict[str, Any]:
        sizes = (*self.options.history_sizes, self.cfg.history_len)
        content = self.content.table() if self.content is not None else None
        return training_inputs(
            self.cfg,
            examples,
            history,
            self.train_options.num_candidates,
            self.cfg.history_len,
            self._rng,
            sizes,
            content=content,
        )

    def history_sizes(self) -> list[int]:
        return sorted({min(size, self.cfg.history_len) for size in (*self.options.history_sizes, self.cfg.history_len)})

    def warm_up(self) -> int:
        """Compile the step and the scorer for every history size a batch can have, on throwaway inputs (the
        params and optimiser state are not touched); returns the number of sizes. Done once at start, so a
        live trainer never stalls on a compile."""
        sizes = self.history_sizes()
        for size in sizes:
            lines = [Impression(1, 1_000 + i, 7, i, SURFACE, ("favorite",), None) for i in range(size)]
            lines += [Impression(1, 1, 7, size, SURFACE, ("favorite",), "warm-up")]
            examples = examples_from_groups(group_requests(lines[-1:]), self.train_options.num_candidates)
            history = HistoryIndex(lines)
            for batch_size, fn in ((self.options.batch_size, "step"), (self.options.score_batch, "score")):
                inputs = self._inputs(examples * batch_size, history)
                if fn == "step":
                    jax.block_until_ready(self._step(self.params, self.opt_state, inputs))
                else:
                    jax.block_until_ready(self._score(self.params, RankingBatch(**inputs["batch"])))
        return len(sizes)

    def train(self, max_steps: int, should_stop: Callable[[], bool] | None = None) -> int:
        """Run up to `max_steps` of the steps owed; returns how many ran."""
        run = 0
        history = self._history_index()
        losses = []
        budget = min(max_steps, self.owed_steps)
        while run < budget and self._buffer and not (should_stop and should_stop()):
            picks = self._rng.integers(0, len(self._buffer), size=self.options.batch_size)
            batch = [self._buffer[int(i)] for i in picks]
            inputs = self._inputs(batch, history)
            self.params, self.opt_state, step_losses = self._step(self.params, self.opt_state, inputs)
            losses.append(step_losses)
            self._owed_steps -= 1
            run += 1
        if losses:
            mean = np.asarray(jnp.stack(losses)).mean(0)
            self.last_losses = (float(mean[0]), float(mean[1]))
        self.steps += run
        return run

    def publish(self, path: str, meta: Mapping[str, Any] | None = None) -> str:
        """Write the current params as a checkpoint (atomically: temp file, then rename); returns its version."""
        info = {
            "online": True,
            "steps": self.steps,
            "examples_seen": self.examples_seen,
            "content_posts": len(self.content) if self.content is not None else None,
            "published_at_ms": int(time.time() * 1000),
            **(meta or {}),
        }
        codebooks = self.content.codebooks if self.content is not None else None
        return save_checkpoint(path, jax.device_get(self.params), self.cfg, info, codebooks=codebooks)
