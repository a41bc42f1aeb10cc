import dataclasses
from pathlib import Path

import numpy as np
import pytest

from phoenix import semantic_ids
from phoenix.checkpoint import load_checkpoint
from phoenix.config import DEMO
from phoenix.content import load_encoder
from phoenix.examples import HistoryIndex, examples_from_groups, group_requests, synthetic_log
from phoenix.log import Impression
from phoenix.online import (
    ImpressionJoiner,
    OnlineContent,
    OnlineOptions,
    OnlineTrainer,
    PostFacts,
    history_line,
    log_line,
)
from phoenix.train import TrainOptions

TINY = dataclasses.replace(
    DEMO, name="tiny", emb_size=16, num_layers=1, key_size=8, history_len=8, user_vocab=256, post_vocab=1024,
    author_vocab=256, retrieval_dim=8,
)


def test_an_engagement_joins_the_latest_impression_served_before_it_and_windows_close_on_the_trainer_clock() -> None:
    joiner = ImpressionJoiner(window_ms=1000)
    joiner.add_impression("r1", 7, 100, 3, served_at_ms=10_000, read_at_ms=0)
    joiner.add_impression("r2", 7, 100, 3, served_at_ms=20_000, read_at_ms=500)  # the same post served again
    joiner.add_impression("r2", 7, 101, 4, served_at_ms=20_000, read_at_ms=500)
    assert joiner.add_engagement(7, 100, "favorite", ts_ms=25_000)  # after both: the later one
    assert joiner.add_engagement(7, 100, "reply", ts_ms=15_000)  # between: the earlier one
    assert not joiner.add_engagement(8, 100, "favorite", ts_ms=25_000)  # nobody served it to user 8
    assert joiner.close_windows(now_ms=999) == []
    first = joiner.close_windows(now_ms=1000)
    assert [(p.request_id, p.actions) for p in first] == [("r1", {"reply"})]
    rest = joiner.close_windows(now_ms=1500)
    assert [(p.request_id, p.post_id, p.actions) for p in rest] == [("r2", 100, {"favorite"}), ("r2", 101, set())]
    assert joiner.pending == 0
    assert not joiner.add_engagement(7, 101, "favorite", ts_ms=26_000)  # its window closed: too late


def test_a_closed_impression_becomes_a_log_line_on_the_model_target_with_its_age() -> None:
    joiner = ImpressionJoiner(window_ms=1)
    joiner.add_impression("r1", 7, 200, 9, served_at_ms=5_000, read_at_ms=0)  # 200 reposts 100 by author 3
    joiner.add_engagement(7, 200, "repost", 5_100)
    joiner.add_engagement(7, 200, "favorite", 5_100)
    posts = {200: PostFacts(created_at_ms=4_000, target_post_id=100, target_author_id=3)}
    (line,) = [log_line(p, posts) for p in joiner.close_windows(10)]
    assert (line.post_id, line.author_id, line.ts_ms, line.request_id) == (100, 3, 5_000, "r1")
    assert line.actions == ("favorite", "repost")  # ACTIONS order
    assert line.post_age_ms == 1_000  # the repost's own age: when it entered the feed
    unknown = history_line(7, 555, 8, "favorite", "home_for_you", 6_000, posts)
    assert unknown.request_id is None and unknown.post_created_at_ms is None and unknown.actions == ("favorite",)


def test_unknown_actions_and_bad_windows_are_refused() -> None:
    with pytest.raises(ValueError):
        ImpressionJoiner(window_ms=0)
    with pytest.raises(ValueError, match="unknown action"):
        ImpressionJoiner(window_ms=10).add_engagement(1, 2, "teleport", 0)


def test_online_training_learns_validates_before_training_and_publishes(tmp_path: Path) -> None:
    log = synthetic_log(num_users=16, num_authors=16, num_communities=2, requests_per_user=40, seed=0)
    lines = sorted(log, key=lambda line: line.ts_ms)
    trainer = OnlineTrainer(
        TINY,
        TrainOptions(learning_rate=1e-2, num_candidates=8, progress=False),
        OnlineOptions(batch_size=32, passes=10.0, score_batch=32),
    )
    before = trainer.params
    assert trainer.warm_up() == 1  # history_len 8: one size
    assert trainer.params is before and trainer.steps == 0  # compiled only
    reports = []
    for start in range(0, len(lines), 640):  # windows of 80 requests
        report = trainer.observe(lines[start : start + 640])
        assert report is not None and report.lines == len(lines[start : start + 640])
        reports.append(report.auc)
        assert trainer.train(max_steps=1000) > 0
    assert trainer.owed_steps == 0 and trainer.steps > 0
    # Scored before training on each window: the first is chance, later ones see what earlier ones taught.
    assert abs(reports[0] - 0.5) < 0.1
    assert np.mean(reports[-2:]) > reports[0] + 0.15
    version = trainer.publish(str(tmp_path / "online.ckpt"))
    ckpt = load_checkpoint(tmp_path / "online.ckpt")
    assert ckpt.version == version and ckpt.meta["online"] and ckpt.meta["steps"] == trainer.steps
    assert not list(tmp_path.glob("*.tmp"))


def test_online_training_continues_a_content_checkpoint_with_its_codebooks(tmp_path: Path) -> None:
    encoder = load_encoder()
    topics = ("pasta bakery brunch recipe", "raid patch lootbox server")
    texts = [f"{topics[i % 2]} {i}" for i in range(64)]
    codebooks = semantic_ids.fit_codebooks(encoder.encode(texts, ["none"] * 64), levels=2, size=4, seed=0)
    cfg = dataclasses.replace(
        TINY, content_dim=encoder.dim, semantic_id_levels=2, semantic_id_size=4,
        content_encoder=encoder.encoder_id, affinity_buckets=4,
    )
    with pytest.raises(ValueError, match="content"):
        OnlineTrainer(cfg, TrainOptions(progress=False))
    content = OnlineContent(cfg, encoder, codebooks)
    vectors, ids = content.table().lookup(np.array([[1, 2]]), 2)  # nothing read yet: every post unknown
    assert vectors.shape == (1, 2, encoder.dim) and ids.shape == (1, 2, 2) and not vectors.any() and not ids.any()
    # Posts 1-32 of author 1 on topic 0, 33-64 of author 2 on topic 1; post 99 reposts post 1.
    for post_id in range(1, 65):
        content.add(post_id, topics[(post_id - 1) // 32], "photo" if post_id % 3 else "none")
    content.add(99, "", "none", repost_of_post_id=1)
    with pytest.raises(ValueError, match="media"):
        content.add(100, "a gif", "gif")  # refused at once: a later batch never fails on it
    trainer = OnlineTrainer(
        cfg, TrainOptions(learning_rate=1e-2, progress=False), OnlineOptions(batch_size=8, passes=4.0, score_batch=8),
        content=content,
    )
    table = content.table()
    vectors, ids = table.lookup(np.array([1, 99, 500]), 2)
    assert np.array_equal(vectors[0], vectors[1]) and not vectors[2].any()  # a repost reads its original
    assert (ids[:2] > 0).all() and not ids[2].any()
    # User 7 favourites topic 0, ignores topic 1.
    lines = [
        Impression(7, post_id, 1 + (post_id > 32), 1_000 * post_id, "home_for_you",
                   ("favorite",) if post_id <= 32 else (), f"r{post_id // 8}")
        for post_id in range(1, 65)
    ]
    batch = trainer._inputs(examples_from_groups(group_requests(lines), 8)[:1], HistoryIndex(lines))["batch"]
    assert batch["candidate_content"].any() and batch["candidate_semantic_ids"].any()
    assert trainer.observe(lines) is not None and trainer.train(max_steps=100) > 0
    trainer.publish(str(tmp_path / "online.ckpt"))
    ckpt = load_checkpoint(tmp_path / "online.ckpt")
    assert ckpt.cfg == cfg and np.array_equal(ckpt.codebooks, codebooks)
    assert ckpt.meta["content_posts"] == 65
    content.forget(lambda post_id: post_id > 32)
    assert len(content) == 33 and not content.table().lookup(np.array([1]), 2)[0].any()
    other = dataclasses.replace(cfg, content_encoder="another-recipe")
    with pytest.raises(ValueError, match="another-recipe"):
        OnlineContent(other, encoder, codebooks)
