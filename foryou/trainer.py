"""`foryou trainer`: Phoenix learning from the stream, publishing checkpoints that workers hot-reload.

    foryou trainer [--checkpoint PATH] [--init CKPT] [--config demo|large] [--window-s S] [--publish-every-s S]
                   [--metrics-port P] [--optimiser NAME] [--learning-rate LR]

It reads `impressions` and `engagement-events` in one consumer group (`<app id>-trainer`; a new group starts
at the earliest offsets) and tails the app's post log (`<app id>-post-log`, from its start, like a worker's
replica) for each post's creation time and repost target. Impressions wait `--window-s` for their
engagements (`phoenix.online.ImpressionJoiner`); closed ones become engagement-log lines and train the model
incrementally (`phoenix.online.OnlineTrainer`: the offline example builder, objective and optimiser). Every
`--publish-every-s` it writes the checkpoint to `--checkpoint` (temporary file, then rename: a worker never
reads half a file; workers with FORYOU_CHECKPOINT on that path reload it within 10 s) and commits its
offsets. It starts from the checkpoint already at that path, else `--init`, else an untrained seeded model
(`--config`), and publishes that starting point at once, so a worker can start on the path. A checkpoint is
continued with its own config: one trained with a posts file (content inputs) gets each post's content
from the post log's text and media, embedded by the encoder the checkpoint names, and its semantic-ID
codebooks are kept and published with every checkpoint (`phoenix.online.OnlineContent`).

State kept only in memory (the optimiser's moments, open impressions, recent lines for histories) is lost
on restart; the params are not (they are the last checkpoint). Progress and online metrics are on its own
/metrics (`foryou.trainer_metrics`).

Settings: the common ones (KAFKA_BOOTSTRAP, FORYOU_APP_ID, FORYOU_CHECKPOINT, FORYOU_POST_RETENTION_MS) and
FORYOU_TRAINER_WINDOW_S (300), FORYOU_TRAINER_PUBLISH_S (300), FORYOU_TRAINER_HOST (127.0.0.1) and
FORYOU_TRAINER_PORT (6067); options override them.
"""

import argparse
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import numpy as np

from foryou import trainer_metrics as metrics
from foryou.settings import Settings, librdkafka_config
from phoenix.config import CONFIGS
from phoenix.log import Impression
from phoenix.online import (
    ImpressionJoiner,
    OnlineContent,
    OnlineOptions,
    OnlineTrainer,
    PostFacts,
    WindowReport,
    history_line,
    log_line,
)
from phoenix.optim import OPTIMISERS
from phoenix.train import TrainOptions
from topics.schemas import Engagement, TweetCreate
from topics.schemas import Impression as ServedImpression
from topics.specs import ENGAGEMENT_EVENTS, IMPRESSIONS

if TYPE_CHECKING:
    from confluent_kafka import Consumer

    from phoenix.checkpoint import Checkpoint

log = logging.getLogger("foryou.trainer")

# An engagement read before its impression waits at most this long (or the window, if shorter) for it.
EARLY_ENGAGEMENT_GRACE_MS = 10_000
_STEPS_PER_POLL = 8  # bounds the time between polls, so consuming keeps up while training


class StreamTrainer:
    """Decoded records in, training and checkpoints out (no Kafka here: `run` feeds it)."""

    def __init__(self, trainer: OnlineTrainer, window_ms: int, post_retention_ms: int) -> None:
        self.trainer = trainer
        self.joiner = ImpressionJoiner(window_ms)
        self.posts: dict[int, PostFacts] = {}
        self.post_retention_ms = post_retention_ms
        self._history: list[Impression] = []
        # Engagements read before the impression they answer (the two topics are fetched independently, and a
        # client engages as soon as it has the answer): held this long for their impression, then history.
        self.early_grace_ms = min(window_ms, EARLY_ENGAGEMENT_GRACE_MS)
        self._early: deque[tuple[Engagement, float]] = deque()
        self.last_report: WindowReport | None = None

    def on_post(self, post: TweetCreate) -> None:
        target, author = post.post_id, post.author_id
        if post.repost_of_post_id is not None and post.repost_of_user_id is not None:
            target, author = post.repost_of_post_id, post.repost_of_user_id
        if self.trainer.content is not None:  # first: a post whose content is refused is not kept at all
            self.trainer.content.add(post.post_id, post.text, post.media, post.repost_of_post_id)
        self.posts[post.post_id] = PostFacts(post.created_at_ms, target, author)

    def on_impression(self, impression: ServedImpression, read_at_ms: float) -> None:
        self.joiner.add_impression(
            impression.request_id,
            impression.user_id,
            impression.post_id,
            impression.author_id,
            impression.served_at_ms,
            read_at_ms,
        )

    def on_engagement(self, engagement: Engagement, read_at_ms: float | None = None) -> None:
        if not self._join(engagement):
            self._early.append((engagement, time.time() * 1000 if read_at_ms is None else read_at_ms))

    def _join(self, engagement: Engagement) -> bool:
        return self.joiner.add_engagement(engagement.user_id, engagement.post_id, engagement.action, engagement.ts_ms)

    def _settle_early(self, now_ms: float) -> None:
        """Join the held engagements whose impression has come; those held past the grace become history."""
        held, self._early = self._early, deque()
        for engagement, read_at_ms in held:
            if self._join(engagement):
                continue
            if now_ms - read_at_ms < self.early_grace_ms:
                self._early.append((engagement, read_at_ms))
                continue
            metrics.unjoined_engagements.inc()
            self._history.append(
                history_line(
                    engagement.user_id,
                    engagement.post_id,
                    engagement.author_id,
                    engagement.action,
                    engagement.surface,
                    engagement.ts_ms,
                    self.posts,
                )
            )

    def tick(self, now_ms: float, max_steps: int = _STEPS_PER_POLL) -> int:
        """Close due windows, learn from them, take up to `max_steps` steps; returns the steps taken."""
        self._settle_early(now_ms)
        if self._history:
            self.trainer.observe_history(self._history)
            self._history = []
        closed = [log_line(pending, self.posts) for pending in self.joiner.close_windows(now_ms)]
        metrics.pending_impressions.set(self.joiner.pending)
        if closed:
            positives = sum(line.positive for line in closed)
            metrics.lines.labels("positive").inc(positives)
            metrics.lines.labels("negative").inc(len(closed) - positives)
            before = self.trainer.examples_seen
            report = self.trainer.observe(closed)
            metrics.examples.inc(self.trainer.examples_seen - before)
            if report is not None:
                self.last_report = report
                metrics.window_lines.set(report.lines)
                if np.isfinite(report.auc):
                    metrics.window_auc.set(report.auc)
        taken = self.trainer.train(max_steps)
        if taken:
            metrics.steps.inc(taken)
            if self.trainer.last_losses is not None:
                metrics.loss.labels("ranker").set(self.trainer.last_losses[0])
                metrics.loss.labels("retrieval").set(self.trainer.last_losses[1])
        return taken

    def forget_old_posts(self, now_ms: float) -> None:
        horizon = now_ms - self.post_retention_ms
        self.posts = {pid: facts for pid, facts in self.posts.items() if facts.created_at_ms >= horizon}
        if self.trainer.content is not None:
            self.trainer.content.forget(self.posts.__contains__)

    def publish(self, path: Path) -> str:
        version = self.trainer.publish(os.fspath(path))
        metrics.checkpoints.inc()
        metrics.model_info.clear()
        metrics.model_info.labels(version).set(1)
        return version


# -- Kafka ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainerOptions:
    checkpoint: Path
    init: Path | None
    config: str
    window_ms: int
    publish_every_s: float
    metrics_host: str
    metrics_port: int
    optimiser: str
    seed: int
    learning_rate: float = TrainOptions.learning_rate
    batch_size: int = OnlineOptions.batch_size
    passes: float = OnlineOptions.passes


def trainer_group(settings: Settings) -> str:
    return f"{settings.app_id}-trainer"


def starting_point(options: TrainerOptions) -> tuple["Checkpoint | None", str]:
    """The checkpoint to continue (the one at --checkpoint, else --init; None: untrained) and its name."""
    from phoenix.checkpoint import load_checkpoint

    for source in (options.checkpoint, options.init):
        if source is not None and Path(source).exists():
            ckpt = load_checkpoint(source)
            return ckpt, f"{source} ({ckpt.version})"
    return None, f"untrained {options.config} (seed {options.seed})"


def online_trainer(options: TrainerOptions, start: "Checkpoint | None") -> OnlineTrainer:
    """An OnlineTrainer continuing `start` with its config, codebooks and content inputs (or untrained)."""
    cfg = start.cfg if start is not None else CONFIGS[options.config]
    content = None
    if cfg.has_content:
        from phoenix.content import load_encoder

        try:
            content = OnlineContent(cfg, load_encoder(), start.codebooks if start is not None else None)
        except ValueError as exc:
            raise SystemExit(f"cannot continue this checkpoint: {exc}") from None
    train_options = TrainOptions(
        optimiser=options.optimiser, seed=options.seed, learning_rate=options.learning_rate, progress=False
    )
    online = OnlineOptions(batch_size=options.batch_size, passes=options.passes)
    params = start.params if start is not None else None
    return OnlineTrainer(cfg, train_options, online, params=params, content=content)  # type: ignore[arg-type]


def _decode_all(messages: Iterable[object], now_ms: float, stream: StreamTrainer) -> None:
    from topics.validation import InvalidRecord, decode_engagement, decode_impression

    for message in messages:
        if message.error() is not None:  # type: ignore[attr-defined]
            log.warning("consumer error: %s", message.error())  # type: ignore[attr-defined]
            continue
        topic = message.topic()  # type: ignore[attr-defined]
        try:
            if topic == IMPRESSIONS:
                stream.on_impression(decode_impression(message.value()), now_ms)  # type: ignore[attr-defined]
            else:
                stream.on_engagement(decode_engagement(message.value()))  # type: ignore[attr-defined]
        except InvalidRecord:
            # The workers dead-letter bad public records; the trainer only skips and counts them.
            metrics.invalid_records.labels(topic).inc()
            continue
        metrics.records.labels(topic).inc()


def _apply_post_log(messages: Iterable[object], stream: StreamTrainer) -> None:
    import orjson

    for message in messages:
        if message.error() is not None:  # type: ignore[attr-defined]
            continue
        try:
            value = orjson.loads(message.value())  # type: ignore[attr-defined]
        except orjson.JSONDecodeError:
            metrics.invalid_records.labels("post-log").inc()
            continue
        if value.get("type") == "create":
            try:
                stream.on_post(
                    TweetCreate(
                        post_id=value["post_id"],
                        author_id=value["author_id"],
                        created_at_ms=value["created_at_ms"],
                        text=value.get("text") or "",
                        media=value.get("media") or "none",
                        repost_of_post_id=value.get("repost_of_post_id"),
                        repost_of_user_id=value.get("repost_of_user_id"),
                    )
                )
            except (KeyError, TypeError, ValueError):  # the workers validated it; skip and count, never stop
                metrics.invalid_records.labels("post-log").inc()
                continue
        metrics.records.labels("post-log").inc()


def run(settings: Settings, options: TrainerOptions, should_stop: Callable[[], bool]) -> int:
    from confluent_kafka import Consumer, TopicPartition
    from prometheus_client import start_http_server

    from agents.topology import post_log_topic

    start, source = starting_point(options)
    trainer = online_trainer(options, start)
    stream = StreamTrainer(trainer, options.window_ms, settings.post_retention_ms)
    start_http_server(options.metrics_port, addr=options.metrics_host)
    version = stream.publish(options.checkpoint)
    published_at = time.monotonic()
    metrics.checkpoint_age.set_function(lambda: time.monotonic() - published_at)
    log.info("trainer: started from %s, published %s to %s", source, version, options.checkpoint)
    started = time.monotonic()
    sizes = trainer.warm_up()
    log.info("trainer: compiled %d history sizes in %.0f s", sizes, time.monotonic() - started)
    metrics.ready.set(1)

    consumer = Consumer(librdkafka_config(settings.bootstrap, config={
        "group.id": trainer_group(settings),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "log_level": 3,
    }))
    consumer.subscribe([IMPRESSIONS, ENGAGEMENT_EVENTS])
    post_log = post_log_topic(settings)
    posts = Consumer(librdkafka_config(settings.bootstrap, config={
        "group.id": f"{trainer_group(settings)}-posts",  # never committed: the post log is read from its start
        "enable.auto.commit": False,
        "log_level": 3,
    }))
    partitions = posts.list_topics(post_log, timeout=30).topics[post_log].partitions
    posts.assign([TopicPartition(post_log, p, -2) for p in partitions])  # -2: OFFSET_BEGINNING
    try:
        while not should_stop():
            _apply_post_log(posts.consume(5000, timeout=0), stream)
            now_ms = time.time() * 1000
            _decode_all(consumer.consume(2000, timeout=0.2), now_ms, stream)
            stream.tick(now_ms)
            if time.monotonic() - published_at >= options.publish_every_s:
                version = stream.publish(options.checkpoint)
                published_at = time.monotonic()
                stream.forget_old_posts(now_ms)
                _commit(consumer)
                report = stream.last_report
                log.info(
                    "trainer: published %s (%d steps, %d examples; window AUC %s)",
                    version,
                    trainer.steps,
                    trainer.examples_seen,
                    "-" if report is None else f"{report.auc:.3f} on {report.lines} lines",
                )
    finally:
        consumer.close()
        posts.close()
    return 0


def _commit(consumer: "Consumer") -> None:
    """Commit what was consumed; nothing consumed yet is fine, and a failed commit only repeats work later."""
    from confluent_kafka import KafkaError, KafkaException

    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            log.warning("trainer: offset commit failed (%s); it is retried at the next checkpoint", exc)


class StopFlag:
    def __init__(self) -> None:
        self.stopped = False

    def __call__(self) -> bool:
        return self.stopped

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopped = True


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise SystemExit(f"setting {name}={raw!r} is not a number") from exc


def parse_args(argv: list[str] | None, settings: Settings) -> TrainerOptions:
    parser = argparse.ArgumentParser(prog="foryou trainer", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path(settings.checkpoint) if settings.checkpoint else None,
                        help="where to publish (default FORYOU_CHECKPOINT)")
    parser.add_argument("--init", type=Path, help="start from this checkpoint when --checkpoint does not exist yet")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="demo",
                        help="the model when starting untrained (a checkpoint is continued with its own config)")
    parser.add_argument("--window-s", type=float, default=_env_float("FORYOU_TRAINER_WINDOW_S", 300.0),
                        help="how long a served post waits for engagement before it counts as a negative")
    parser.add_argument("--publish-every-s", type=float, default=_env_float("FORYOU_TRAINER_PUBLISH_S", 300.0))
    parser.add_argument("--metrics-host", default=os.environ.get("FORYOU_TRAINER_HOST", "127.0.0.1"))
    parser.add_argument("--metrics-port", type=int, default=int(_env_float("FORYOU_TRAINER_PORT", 6067)))
    parser.add_argument("--optimiser", choices=OPTIMISERS, default=TrainOptions.optimiser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=TrainOptions.learning_rate,
                        help="constant learning rate (lower to fine-tune a trained checkpoint gently)")
    parser.add_argument("--batch-size", type=int, default=OnlineOptions.batch_size)
    parser.add_argument("--passes", type=float, default=OnlineOptions.passes,
                        help="training visits per new example, on average")
    args = parser.parse_args(argv)
    if args.checkpoint is None:
        parser.error("--checkpoint (or FORYOU_CHECKPOINT) is required: it is where workers load the model from")
    if args.window_s <= 0 or args.publish_every_s <= 0:
        parser.error("--window-s and --publish-every-s must be positive")
    return TrainerOptions(
        checkpoint=args.checkpoint,
        init=args.init,
        config=args.config,
        window_ms=int(args.window_s * 1000),
        publish_every_s=args.publish_every_s,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        optimiser=args.optimiser,
        seed=args.seed,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        passes=args.passes,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings()
    options = parse_args(argv, settings)
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.stop)
    signal.signal(signal.SIGINT, stop.stop)
    return run(settings, options, stop)


if __name__ == "__main__":
    sys.exit(main())
