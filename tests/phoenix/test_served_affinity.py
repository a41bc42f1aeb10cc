"""The served-posts affinity input (a candidate's engagement rate over the posts served to the user that
are like it, built alike by training from a log's lines and by serving from the served history) and the
affinity bins fitted on the training examples."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from phoenix import model
from phoenix.affinity import SERVED_PRIOR_WEIGHT, SERVED_TEMPERATURE, bucket_affinity, content_affinity, fit_edges
from phoenix.batch import make_batch, served_posts
from phoenix.config import PhoenixConfig
from phoenix.examples import HistoryIndex, NegativeSampling, examples_to_batch
from phoenix.log import Impression
from phoenix.posts import ContentTable
from phoenix.ranker import Ranker
from phoenix.train import prepare
from stores.records import ActionEntry
from tests.phoenix.test_content_model import CONTENT, _table
from tests.phoenix.test_ranker import BUCKETS, _candidates, _history
from topics.actions import PHOENIX_ACTIONS, actions_to_mask

SERVED = dataclasses.replace(CONTENT, semantic_id_levels=0, served_affinity=True)
FAVORITE = actions_to_mask(["favorite"])
NOT_INTERESTED = actions_to_mask(["not_interested"])
rank = jax.jit(model.rank_logits, static_argnums=1)


def _multi_hot(*names: str) -> np.ndarray:
    row = np.zeros(19, np.float32)
    for name in names:
        row[PHOENIX_ACTIONS.index(name)] = 1
    return row


def test_the_served_rate_tells_apart_topics_the_engaged_history_cannot() -> None:
    cfg = dataclasses.replace(SERVED, content_dim=2, affinity_buckets=9)
    # Engaged history: one liked post of each topic, so the signed profile cannot prefer either.
    history = np.array([[[1.0, 0.0], [0.0, 1.0]]], np.float32)
    history_actions = np.stack([_multi_hot("favorite")] * 2)[None]
    history_mask = np.ones((1, 2), bool)
    # Served: both liked posts, plus four of topic 2 served and ignored and one of topic 1 hidden.
    served = np.array([[[1.0, 0.0], [0.0, 1.0]] + [[0.0, 1.0]] * 4 + [[1.0, 0.0]]], np.float32)
    ignored = np.zeros(19, np.float32)
    served_actions = np.stack([_multi_hot("favorite")] * 2 + [ignored] * 4 + [_multi_hot("not_interested")])[None]
    served_mask = np.ones((1, 7), bool)
    candidates = np.array([[[2.0, 0.0], [0.0, 3.0], [0.0, 0.0]]], np.float32)
    got = content_affinity(cfg, history, history_actions, history_mask, candidates, served, served_actions, served_mask)
    assert got.shape == (1, 3, 3)
    signs = np.array([1, 1, 0, 0, 0, 0, -1], np.float64)
    cosines = np.array([[1, 0, 0, 0, 0, 0, 1], [0, 1, 1, 1, 1, 1, 0]], np.float64)
    weights = np.exp(cosines / SERVED_TEMPERATURE)
    rate = (weights @ signs + SERVED_PRIOR_WEIGHT * signs.mean()) / (weights.sum(1) + SERVED_PRIOR_WEIGHT)
    expected = 1 + np.floor((rate + 1) / 2 * 8)  # bins of width 0.25 over [-1, 1], from 1
    np.testing.assert_array_equal(got[0, :2, 2], expected)
    assert got[0, 0, 0] == got[0, 1, 0]  # the profile cosine is the same for both topics
    assert got[0, 2].tolist() == [0, 0, 0]  # unknown candidate content
    # Nothing served (None, or rows without content): the input is unknown, the others unchanged.
    without = content_affinity(cfg, history, history_actions, history_mask, candidates)
    np.testing.assert_array_equal(without[..., :2], got[..., :2])
    assert not without[..., 2].any()
    blank = content_affinity(cfg, history, history_actions, history_mask, candidates, served * 0, served_actions,
                             served_mask)
    assert not blank[..., 2].any()


def test_the_served_input_is_a_third_affinity_row_and_old_configs_keep_two() -> None:
    assert CONTENT.num_affinity_inputs == 2 and SERVED.num_affinity_inputs == 3
    saved_before = {k: v for k, v in SERVED.to_dict().items() if k != "served_affinity"}
    assert PhoenixConfig.from_dict(saved_before).num_affinity_inputs == 2
    shapes = model.init_params(SERVED, jax.random.PRNGKey(0))["phoenix"]["affinity_table"].shape
    assert shapes == (3, SERVED.affinity_buckets, SERVED.emb_size)
    with pytest.raises(ValueError, match="served_affinity"):
        dataclasses.replace(SERVED, affinity_buckets=0)


def test_served_posts_are_the_served_ids_with_the_historys_actions_and_the_history() -> None:
    history = [ActionEntry(5, 50, FAVORITE, "home_for_you", 1), ActionEntry(6, 60, NOT_INTERESTED, "search", 2)]
    assert sorted(served_posts(history, [5, 7, 8])) == [(5, FAVORITE), (6, NOT_INTERESTED), (7, 0), (8, 0)]
    assert served_posts([], []) == []


def _line(user: int, post: int, ts: int, *actions: str) -> Impression:
    return Impression(user, post, post // 10, ts, "home_for_you", tuple(actions), f"r{ts}")


def test_history_index_served_ids_are_the_shown_posts_before_the_request_newest_first() -> None:
    lines = [_line(1, 10, 100), _line(1, 20, 200, "favorite"), _line(1, 10, 300), _line(1, 30, 400), _line(2, 40, 100)]
    index = HistoryIndex(lines)
    assert index.served_ids(1, 400) == [10, 20]  # strictly before; a post shown twice counts once, at its latest
    assert index.served_ids(1, 401, max_ids=2) == [30, 10]
    assert index.served_ids(1, 401, ttl_ms=150) == [30, 10]  # only what was shown in the last 150 ms
    assert index.served_ids(3, 401) == []
    assert HistoryIndex(lines, served=False).served_ids(1, 401) == []
    # Sampled negatives were never shown: a log with engaged lines only trains without them.
    engaged_only = [_line(1 + ts % 3, 100 + 10 * ts, ts, "favorite") for ts in range(1, 13)]
    data = prepare(engaged_only, 8, 0.5, NegativeSampling(2, 10**6, 0), split_ts_ms=7)
    assert data.sampling is not None and len(data.impressions) > len(engaged_only)
    # So the served posts are the engaged history alone (`served_posts`), never a sampled line.
    assert data.history.served_ids(1, 10**6) == []
    assert HistoryIndex(engaged_only).served_ids(1, 10**6) == [220, 190, 160, 130]


def test_training_examples_read_the_logs_ignored_lines_as_served() -> None:
    posts = np.array([10, 20, 30, 40], np.int64)
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]], np.float32)
    table = ContentTable(posts, vectors, np.zeros((4, 0), np.int32))
    cfg = dataclasses.replace(SERVED, content_dim=2, affinity_buckets=9)
    lines = [_line(1, 10, 100, "favorite"), _line(1, 20, 100, "favorite"), _line(1, 30, 200), _line(1, 40, 300)]
    request = [_line(1, 10, 1_000), _line(1, 20, 1_000)]
    data = prepare(lines + request, 8, 0.2, NegativeSampling(2, 10**6, 0), split_ts_ms=1_000, content=table)
    batch, _ = examples_to_batch(cfg, data.held_out_examples, data.history, 8, content=table)
    served = content_affinity(
        cfg, *[np.asarray(x) for x in (vectors[None, :2], np.stack([_multi_hot("favorite")] * 2)[None],
                                       np.ones((1, 2), bool), vectors[None, :2])],
        vectors[None], np.stack([_multi_hot("favorite")] * 2 + [np.zeros(19, np.float32)] * 2)[None],
        np.ones((1, 4), bool),
    )
    np.testing.assert_array_equal(batch.candidate_affinity[0, :2], served[0])
    assert batch.candidate_affinity[0, 0, 2] > batch.candidate_affinity[0, 1, 2]  # topic 2 was passed over twice


def test_the_ranker_reads_the_served_ids_like_training_and_they_change_scores() -> None:
    cfg = dataclasses.replace(CONTENT, served_affinity=True)  # with semantic ids, as `foryou train` makes it
    params = model.init_params(cfg, jax.random.PRNGKey(2))
    table_rows = np.random.default_rng(2).standard_normal((3, cfg.affinity_buckets, cfg.emb_size))
    params = {**params, "phoenix": {**params["phoenix"], "affinity_table": table_rows.astype(np.float32)}}
    history, cands = _history(3, 9), _candidates(4, 10)
    served_ids = [p for p, _ in _candidates(5, 30)]
    table, codebooks = _table([e.post_id for e in history] + [p for p, _ in cands] + served_ids, 6)

    def source(post_ids: list[int]) -> np.ndarray:
        return table.lookup(np.asarray(post_ids, np.int64), 0)[0]

    ranker = Ranker(cfg, params, "served", candidate_buckets=BUCKETS, codebooks=codebooks, content_source=source)
    probs = ranker.score(5, history, cands, served_ids=served_ids)
    batch = make_batch(cfg, [5], [history], [cands], content=table, served=[served_posts(history, served_ids)])
    np.testing.assert_allclose(probs, np.asarray(jax.nn.sigmoid(rank(params, cfg, batch)))[0], atol=1e-5)
    assert np.abs(ranker.score(5, history, cands) - probs).max() > 1e-3


def test_fitted_edges_fill_the_bins_equally_and_configs_without_them_use_equal_widths() -> None:
    cfg = dataclasses.replace(SERVED, affinity_buckets=5)  # 4 bins per input
    rng = np.random.default_rng(0)
    values = np.stack([rng.uniform(0.0, 0.2, 400), rng.uniform(-1.0, 1.0, 400), np.zeros(400)], -1)
    known = np.stack([np.ones(400, bool), np.arange(400) % 2 == 0, np.zeros(400, bool)], -1)
    edges = fit_edges(values, known, cfg.affinity_buckets)
    np.testing.assert_allclose(edges[0], [0.05, 0.1, 0.15], atol=0.02)
    assert edges[2] == (-0.5, 0.0, 0.5)  # never known: equal widths
    fitted = dataclasses.replace(cfg, affinity_edges=edges)
    buckets = bucket_affinity(fitted, values, known)
    assert np.bincount(buckets[:, 0], minlength=5).tolist() == [0, 100, 100, 100, 100]
    assert (buckets[~known[:, 1], 1] == 0).all() and not buckets[:, 2].any()
    # Equal widths put every value of [0, 0.2] into one bin.
    assert set(bucket_affinity(cfg, values, known)[:, 0].tolist()) == {3}
    assert PhoenixConfig.from_dict(json.loads(json.dumps(fitted.to_dict()))) == fitted  # saved in checkpoints
    with pytest.raises(ValueError, match="affinity_edges"):
        dataclasses.replace(cfg, affinity_edges=edges[:2])
    with pytest.raises(ValueError, match="affinity_edges"):
        dataclasses.replace(cfg, affinity_edges=((0.5, 0.0, 1.0),) * 3)
