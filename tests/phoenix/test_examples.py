import dataclasses

import jax
import numpy as np
import pytest

from phoenix.config import DEMO
from phoenix.examples import (
    HistoryIndex,
    examples_from_groups,
    examples_to_batch,
    group_requests,
    sample_negatives,
    split_groups,
    split_time,
    synthetic_log,
)
from phoenix.log import Impression
from phoenix.model import init_params, rank_logits, user_embedding
from topics.actions import ACTION_INDEX, actions_to_mask


def imp(
    user: int,
    post: int,
    ts: int,
    actions: tuple[str, ...] = ("favorite",),
    rid: str | None = None,
    author: int | None = None,
) -> Impression:
    return Impression(user, post, author if author is not None else post + 100, ts, "home_for_you", actions, rid)


def test_history_is_strictly_earlier_and_merged() -> None:
    log = [
        imp(1, 10, 100),
        imp(1, 11, 200, ("reply",)),
        imp(1, 10, 300, ("repost",)),
        imp(1, 12, 400, ()),  # no engagement: never in a history
        imp(1, 13, 500),
        imp(2, 14, 150),  # another user's line
    ]
    index = HistoryIndex(log)
    assert index.history(1, 100) == []  # the line at ts 100 itself is not history at ts 100
    at_300 = index.history(1, 300)
    assert [(e.post_id, e.ts_ms) for e in at_300] == [(10, 100), (11, 200)]
    at_500 = index.history(1, 500)
    # Post 10 merged (favorite | repost) and moved to its latest time; ordered oldest -> newest.
    assert [e.post_id for e in at_500] == [11, 10]
    assert at_500[1].action_mask == actions_to_mask(["favorite", "repost"])
    assert at_500[1].ts_ms == 300 and at_500[1].author_id == 110
    assert all(e.ts_ms < 500 for e in at_500)


def test_history_keeps_newest_but_merges_older_labels() -> None:
    log = [imp(1, 10, 100, ("reply",)), imp(1, 11, 200), imp(1, 10, 300), imp(1, 12, 400)]
    newest_two = HistoryIndex(log).history(1, 1000, max_len=2)
    assert [e.post_id for e in newest_two] == [10, 12]
    assert newest_two[0].action_mask == actions_to_mask(["favorite", "reply"])


def test_no_future_in_any_example_history() -> None:
    log = synthetic_log(num_users=6, num_authors=8, requests_per_user=10, seed=3)
    index = HistoryIndex(log)
    for group in group_requests(log):
        history = index.history(group.user_id, group.ts_ms)
        assert all(entry.ts_ms < group.ts_ms for entry in history)
        # The group's own engaged posts are not in its history unless engaged in an earlier request.
        earlier = {i.post_id for i in log if i.user_id == group.user_id and i.engaged and i.ts_ms < group.ts_ms}
        assert {e.post_id for e in history} == earlier


def test_group_requests() -> None:
    log = [imp(1, 10, 200, rid="a"), imp(2, 11, 100), imp(1, 12, 150, rid="a"), imp(2, 13, 100)]
    groups = group_requests(log)
    # Null request ids are groups of one; a group's time is its earliest line.
    assert [(g.user_id, g.ts_ms, len(g.impressions)) for g in groups] == [
        (2, 100, 1),
        (2, 100, 1),
        (1, 150, 2),
    ]


def test_split_is_chronological() -> None:
    log = [imp(1, p, ts) for p, ts in enumerate(range(0, 1000, 10), start=1)]
    groups = group_requests(log)
    split = split_time(groups, 0.1)
    train, held_out = split_groups(groups, split)
    assert len(held_out) == 10 and len(train) == 90
    assert max(g.ts_ms for g in train) < split <= min(g.ts_ms for g in held_out)
    with pytest.raises(ValueError):
        split_time(group_requests([imp(1, 1, 5), imp(1, 2, 5)]), 0.5)


def test_examples_chunk_groups_and_label() -> None:
    log = [imp(1, p, 100, ("favorite", "reply") if p == 1 else (), rid="a") for p in range(1, 6)]
    examples = examples_from_groups(group_requests(log), num_candidates=2)
    assert [len(e.candidates) for e in examples] == [2, 2, 1]
    assert examples[0].labels.shape == (2, 19)
    assert examples[0].labels[0, ACTION_INDEX["reply"]] == 1.0
    assert examples[0].labels[1].sum() == 0.0


def test_sample_negatives_from_the_recent_past_only() -> None:
    rng = np.random.default_rng(0)
    log = [
        imp(int(u), int(p), int(ts), author=int(p) % 7 + 1)
        for u, p, ts in zip(rng.integers(1, 20, 300), rng.integers(1, 50, 300), np.arange(300) * 10, strict=True)
    ]
    out = sample_negatives(log, per_positive=3, window_ms=200, seed=1)
    positives = [i for i in out if i.engaged]
    negatives = [i for i in out if not i.engaged]
    assert len(positives) == len(log)
    assert 0 < len(negatives) <= 3 * len(log)
    assert all(i.request_id is not None for i in out)
    groups = {g.impressions[0].request_id: g for g in group_requests(out)}
    for negative in negatives:
        group = groups[negative.request_id]
        engaged_authors = {i.author_id for i in group.impressions if i.engaged}
        assert negative.author_id not in engaged_authors and negative.author_id != negative.user_id
        # The negative post was engaged by someone inside the window before the request, never later.
        assert any(i.post_id == negative.post_id and group.ts_ms - 200 <= i.ts_ms < group.ts_ms for i in log)
    assert out == sample_negatives(log, per_positive=3, window_ms=200, seed=1)


def test_synthetic_log_has_the_planted_signal() -> None:
    log = synthetic_log(seed=1)
    same = [i.engaged for i in log if i.author_id % 4 == i.user_id % 4]
    other = [i.engaged for i in log if i.author_id % 4 != i.user_id % 4]
    assert np.mean(same) > 0.4 and np.mean(other) < 0.1


def test_narrow_history_batch_is_the_same_model_input() -> None:
    cfg = dataclasses.replace(
        DEMO,
        name="tiny",
        emb_size=16,
        num_layers=1,
        key_size=8,
        history_len=32,
        user_vocab=256,
        post_vocab=1024,
        author_vocab=256,
        retrieval_dim=8,
    )
    log = synthetic_log(num_users=6, num_authors=8, requests_per_user=10, seed=3)
    history = HistoryIndex(log)
    examples = examples_from_groups(group_requests(log), num_candidates=8)[10:26]
    lengths = [len(history.history(ex.user_id, ex.ts_ms)) for ex in examples]
    assert 0 < max(lengths) <= 8
    full, labels = examples_to_batch(cfg, examples, history, 8)
    narrow, narrow_labels = examples_to_batch(cfg, examples, history, 8, history_slots=8)
    assert full.history.mask.shape == (16, 32) and narrow.history.mask.shape == (16, 8)
    assert (narrow.history.mask.sum(1) == lengths).all()
    assert (labels == narrow_labels).all()
    assert (full.candidate_surfaces[full.candidate_mask] == 2).all()  # home_for_you, from the log lines
    params = init_params(cfg, jax.random.PRNGKey(0))
    mask = full.candidate_mask
    # Positions count back from S, so dropping padding slots changes nothing.
    np.testing.assert_allclose(
        np.asarray(rank_logits(params, cfg, full))[mask],
        np.asarray(rank_logits(params, cfg, narrow))[mask],
        atol=1e-4,
    )
    np.testing.assert_allclose(
        np.asarray(user_embedding(params, cfg, full)), np.asarray(user_embedding(params, cfg, narrow)), atol=1e-5
    )
