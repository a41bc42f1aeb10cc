"""A small in-process world for the simulator's tests: a real post store (RocksDB), user tables over dicts
(Faust tables in a worker) and an untrained tiny Phoenix with post ages."""

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from agents.feeds import UserState
from phoenix.audience import AudienceRanker
from phoenix.config import PhoenixConfig
from phoenix.ranker import Ranker
from stores.action_sequences import UserActionSequences
from stores.post_store import PostStore
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from streams.config import load_config
from streams.simulate import DraftSimulator

TINY_AGED = PhoenixConfig(
    name="tiny-aged", emb_size=32, num_layers=2, num_q_heads=4, num_kv_heads=2, key_size=16,
    widening_factor=2.0, history_len=16, user_vocab=257, post_vocab=4099, author_vocab=1031,
    retrieval_dim=8, age_buckets=16,
)
# The same model reading post content and the candidate's content affinity to the user's history.
TINY_CONTENT = dataclasses.replace(TINY_AGED, name="tiny-content", content_dim=8, affinity_buckets=4)
USERS = list(range(1, 41))
AUTHORS = list(range(100, 116))
HOUR_MS = 3_600_000


class SimWorld:
    def __init__(self, directory: Path, seed: int = 0, retrieval_max: int = 40,
                 model: PhoenixConfig = TINY_AGED) -> None:
        rng = np.random.default_rng(seed)
        self.now_ms = int(time.time() * 1000)
        self.post_store = PostStore(str(directory / "posts"))
        events = []
        post_id = 10_000
        for author in AUTHORS:
            for _ in range(12):
                post_id += 1
                events.append({"type": "create", "post_id": post_id, "author_id": author,
                               "created_at_ms": self.now_ms - int(rng.integers(1, 40)) * HOUR_MS,
                               "text": f"post {post_id} about {'cats' if post_id % 3 else 'dogs'}",
                               "media": "video" if post_id % 5 == 0 else "none",
                               "video_duration_ms": 20_000 if post_id % 5 == 0 else None})
        self.post_ids = [e["post_id"] for e in events]
        self.post_store.apply(events, now_ms=self.now_ms)
        self.tables: dict[str, dict] = {"actions": {}, "graph": {}, "served": {}}
        self.actions = UserActionSequences(self.tables["actions"])
        self.graph = SocialGraph(self.tables["graph"])
        self.served = ServedHistory(self.tables["served"])
        for user in USERS:
            for author in rng.choice(AUTHORS, size=int(rng.integers(0, 6)), replace=False):
                self.graph.apply({"type": "follow", "user_id": user, "target_id": int(author), "ts_ms": self.now_ms})
            for _ in range(int(rng.integers(0, 12))):
                event = events[int(rng.integers(len(events)))]
                self.actions.record({"user_id": user, "post_id": event["post_id"], "author_id": event["author_id"],
                                     "action": str(rng.choice(["favorite", "reply", "click", "dwell"])),
                                     "surface": "home_for_you", "ts_ms": self.now_ms - HOUR_MS, "dwell_ms": 500})
        self.graph.apply({"type": "mute_keyword", "user_id": 7, "keyword": "launch", "ts_ms": self.now_ms})
        # Two history buckets: users' prefixes then differ in length, as on a worker.
        self.ranker = Ranker.untrained(model, seed=seed, candidate_buckets=(32, 128), history_buckets=(4, 16))
        if model.content_dim:
            self.ranker.content_source = _content_vectors(model.content_dim)
        for event in events:
            self.ranker.index.add(event["post_id"], event["author_id"])
        # The January preset: the simulator's batched rank models its scorers (weighted, diversity, OON); the
        # 2026-10 cold-start lift and DPP selection depend on the whole request and are not modelled.
        config = load_config(env={"FORYOU_PRESET": "seed-2026-01"})
        self.config = dataclasses.replace(
            config, sources=dataclasses.replace(config.sources, retrieval_max=retrieval_max)
        )
        self.simulator = DraftSimulator(
            config=self.config, post_store=self.post_store,
            user_state=UserState(self.actions, self.graph, self.served),
            ranker=self.ranker, audience_ranker=AudienceRanker(self.ranker),
        )

    def following(self) -> dict[int, frozenset[int]]:
        return {u: self.graph.features(u).following for u in USERS}

    def close(self) -> None:
        self.post_store.close()


def _content_vectors(dim: int) -> Callable[[Sequence[int]], np.ndarray]:
    """A deterministic content vector per post id (what a worker's post store would hold)."""
    def vectors(post_ids: Sequence[int]) -> np.ndarray:
        return np.stack([np.random.default_rng(int(i)).standard_normal(dim).astype(np.float32) for i in post_ids])

    return vectors
