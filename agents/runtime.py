"""What a worker opens at start and closes at stop: the post-store replica, the engagement-count replica, the
ranker, the feed service."""

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import faust
import numpy as np
from mode import Service

from agents import metrics
from agents.collector import tune_collector
from agents.counts_replica import CountsReplica
from agents.dead_letters import DeadLetters
from agents.post_replica import PostReplica
from agents.topology import partition_count, post_log_topic
from foryou.settings import Settings
from stores.engagement_counts import EngagementCounts
from stores.post_store import Applied, PostStore
from stores.records import stack_vectors
from streams.config import ForYouConfig
from streams.ports import RankerPort
from topics.specs import ENGAGEMENT_EVENTS, IMPRESSIONS

if TYPE_CHECKING:
    from agents.feeds import FeedService
    from phoenix.content import ContentEncoder
    from phoenix.ranker import Ranker

log = logging.getLogger(__name__)

# Typed with the pipeline's port, so the type checker verifies that the Ranker is one.
FeedServiceFactory = Callable[[RankerPort | None, PostStore, EngagementCounts], "FeedService"]


class Runtime(Service):
    """Started by the app once its tables are recovered; agents wait on `serving` before consuming, and
    feed requests (the user-events agent) on `posts_caught_up` too: a restarted worker must not serve a post
    whose delete is already on the post log but not yet in its replica."""

    def __init__(
        self, app: faust.App, settings: Settings, dead_letters: DeadLetters, config: ForYouConfig, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.settings = settings
        self.dead_letters = dead_letters
        self.config = config
        self.serving = asyncio.Event()
        self.post_store: PostStore | None = None
        self.counts: EngagementCounts | None = None
        self.counts_replica: CountsReplica | None = None
        self.ranker: Ranker | None = None
        self.replica: PostReplica | None = None
        self._feeds: FeedService | None = None
        self._feeds_factory: FeedServiceFactory | None = None
        self._assigned = False
        app.task(self._start_with_app)
        # mypy sees the method of a mode Service unbound (with self), so not as the receiver faust types.
        app.on_rebalance_complete.connect(self._on_rebalance_complete)  # type: ignore[arg-type]

    def bind_feeds(self, factory: FeedServiceFactory) -> None:
        self._feeds_factory = factory

    @property
    def feeds(self) -> "FeedService":
        assert self._feeds is not None, "feed service used before the runtime started"
        return self._feeds

    async def _on_rebalance_complete(self, sender: object, **kwargs: object) -> None:
        self._assigned = True

    async def _start_with_app(self) -> None:
        await self.app.add_runtime_dependency(self)

    async def on_start(self) -> None:
        started = time.monotonic()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        encoder = await asyncio.to_thread(self._load_content_encoder)
        thunder = self.config.thunder
        self.post_store = PostStore(
            str(self.settings.data_dir / "post-store"),
            retention_ms=self.settings.post_retention_ms,
            content_encoder=encoder.encode if encoder is not None else None,
            timeline_cap=thunder.timeline_cap,
            max_original_per_author=thunder.max_originals_per_author,
            max_secondary_per_author=thunder.max_secondary_per_author,
        )
        self.counts = EngagementCounts(str(self.settings.data_dir / "engagement-counts"))
        if self.settings.policy == "phoenix":
            self.ranker = await asyncio.to_thread(self._load_ranker)
            metrics.model_info.labels(self.ranker.version).set(1)
            self._connect_content(self.ranker, encoder, self.post_store)
        assert self._feeds_factory is not None
        self._feeds = self._feeds_factory(self.ranker, self.post_store, self.counts)
        topics = (IMPRESSIONS, ENGAGEMENT_EVENTS)
        self.counts_replica = CountsReplica(
            bootstrap=self.settings.bootstrap,
            security=self.settings.kafka_security,
            partitions={t: await asyncio.to_thread(partition_count, self.settings, t) for t in topics},
            counts=self.counts,
        )
        await self.add_runtime_dependency(self.counts_replica)
        self.replica = PostReplica(
            bootstrap=self.settings.bootstrap,
            security=self.settings.kafka_security,
            topic=post_log_topic(self.settings),
            partitions=await asyncio.to_thread(partition_count, self.settings, post_log_topic(self.settings)),
            post_store=self.post_store,
            on_applied=self._on_posts_applied,
            dead_letters=self.dead_letters,
        )
        await self.add_runtime_dependency(self.replica)
        if self.ranker is not None:
            await asyncio.to_thread(self._index_existing_posts)
        # Everything loaded so far lives as long as the worker: out of the collector's way from now on.
        tune_collector(self.settings.gc_young_threshold)
        self.serving.set()
        log.info(
            "runtime started in %.1fs (policy=%s, preset=%s)",
            time.monotonic() - started,
            self.settings.policy,
            self.config.preset,
        )

    async def on_stop(self) -> None:
        if self.post_store is not None:
            self.post_store.close()
        if self.counts is not None:
            self.counts.close()

    def _load_content_encoder(self) -> "ContentEncoder | None":
        if self.settings.content == "off":
            return None
        from phoenix.content import load_encoder

        encoder = load_encoder()
        log.info("content encoder %s loaded", encoder.encoder_id)
        return encoder

    @staticmethod
    def _connect_content(ranker: "Ranker", encoder: "ContentEncoder | None", post_store: PostStore) -> None:
        """The ranker reads content vectors from the post store (used by models that read content, including
        one a later reload brings)."""
        cfg = ranker.cfg
        if encoder is None:
            if cfg.has_content:
                log.warning("the model reads post content but FORYOU_CONTENT=off: every post's content is unknown")
            return
        if cfg.has_content and cfg.content_encoder != encoder.encoder_id:
            raise RuntimeError(
                f"the model was trained on {cfg.content_encoder!r} content vectors, this worker computes "
                f"{encoder.encoder_id!r}: retrain, or run the matching version"
            )
        dim = encoder.dim

        def content(post_ids: Sequence[int]) -> np.ndarray:
            return stack_vectors(post_store.content_vectors(post_ids), dim)

        ranker.content_source = content

    async def wait_posts_caught_up(self, on_progress: Callable[[int], None]) -> None:
        """Until the post replica has applied the post log up to its end offsets as of the worker's start;
        `on_progress(records)` meanwhile, each second the replica moved (reading a long log is work, not a
        stall)."""
        await self.serving.wait()
        replica = self.replica
        assert replica is not None
        seen = replica.records_read
        while not replica.caught_up.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(replica.caught_up.wait(), timeout=1.0)
            if replica.records_read > seen:
                on_progress(replica.records_read - seen)
                seen = replica.records_read

    def _load_ranker(self) -> "Ranker":
        from phoenix.config import DEMO
        from phoenix.ranker import Ranker

        checkpoint = self.settings.checkpoint
        try:
            ranker = Ranker.from_checkpoint(checkpoint) if checkpoint else Ranker.untrained(DEMO, seed=0)
        except Exception:  # a truncated or foreign file must not keep the worker from starting
            metrics.model_load_failures.labels("start").inc()
            log.exception(
                "FORYOU_CHECKPOINT %s cannot be loaded: serving the untrained fallback model until a readable "
                "checkpoint is written there", checkpoint,
            )
            # Keeps watching the path: a good checkpoint written there later is swapped in by the reload timer.
            ranker = Ranker.untrained(DEMO, seed=0, checkpoint_path=checkpoint, mtime_ns=_mtime_ns(checkpoint))
        ranker.warmup()
        log.info("ranker %s loaded and warmed up", ranker.version)
        return ranker

    def _index_existing_posts(self) -> None:
        """At start, embed every live post the replica already holds (later ones arrive as events)."""
        assert self.ranker is not None and self.post_store is not None
        since = int(time.time() * 1000) - self.settings.post_retention_ms
        for post in self.post_store.iter_recent(since):
            self.ranker.index.add(post.post_id, post.author_id)

    async def _on_posts_applied(self, applied: Applied) -> None:
        """The retrieval index follows the store: exactly the posts it accepted enter, those it removed leave."""
        assert self.post_store is not None
        metrics.post_store_posts.set(self.post_store.count())
        if applied.refused_deletes:
            metrics.refused_deletes.inc(len(applied.refused_deletes))
            log.warning("refused %d deletes naming another author than the post's: %s",
                        len(applied.refused_deletes), applied.refused_deletes[:10])
        if self.ranker is None:
            return
        index = self.ranker.index
        for post_id in applied.removed:
            index.remove(post_id)
        for post_id, author_id in applied.added.items():
            index.add(post_id, author_id)

    def forget_posts(self, post_ids: list[int]) -> None:
        """Posts gone from the store past retention leave the retrieval index and the counts too (they would
        keep growing)."""
        if self.counts is not None:
            self.counts.forget(post_ids)
        if self.ranker is not None:
            for post_id in post_ids:
                self.ranker.index.remove(post_id)

    async def maybe_reload_model(self) -> None:
        if self.ranker is None:
            return
        try:
            reloaded = await asyncio.to_thread(self.ranker.maybe_reload)
        except Exception:  # a bad new file: keep serving the current model, say so, try again when it changes
            metrics.model_load_failures.labels("reload").inc()
            log.exception("checkpoint %s cannot be loaded: keeping %s", self.settings.checkpoint, self.ranker.version)
            return
        if reloaded:
            metrics.model_info.clear()
            metrics.model_info.labels(self.ranker.version).set(1)
            log.info("ranker reloaded: now %s", self.ranker.version)

    def readiness(self) -> dict[str, Any]:
        caught_up = self.replica is not None and self.replica.caught_up.is_set()
        status = {
            "started": self.serving.is_set(),
            "assigned": self._assigned,
            "recovering": bool(self.app.in_recovery),
            "post_replica_caught_up": caught_up,
            "posts": self.post_store.count() if self.post_store is not None else 0,
            "model": self.ranker.version if self.ranker is not None else "reverse-chron",
        }
        status["ready"] = status["started"] and self._assigned and not status["recovering"] and caught_up
        return status


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
