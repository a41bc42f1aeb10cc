"""DppReranker: greedy MAP by incremental Cholesky equals the greedy by determinants; scores and fallback."""

from dataclasses import replace

import numpy as np
import pytest

from scoring.dpp import DROPPED, NO_EMBEDDINGS, SELECTED, DppReranker, greedy_map
from streams.config import load_config
from tests.scoring.scoring_fakes import candidate, query, scored

CONFIG = load_config(env={}).dpp  # production-2026-10: theta 0.65, top 150 -> 50


def greedy_by_determinants(weights: np.ndarray, unit: np.ndarray, k: int, eps: float) -> list[int]:
    """The definition: add the item that maximises det(L_S), computed outright."""
    kernel = weights[:, None] * (unit @ unit.T) * weights[None, :]
    chosen: list[int] = []
    while len(chosen) < k:
        gains = {}
        base = np.linalg.det(kernel[np.ix_(chosen, chosen)]) if chosen else 1.0
        for i in set(range(len(weights))) - set(chosen):
            s = [*chosen, i]
            gains[i] = np.linalg.det(kernel[np.ix_(s, s)]) / base
        best = max(gains, key=gains.__getitem__)
        if gains[best] <= eps:
            break
        chosen.append(best)
    return chosen


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    e = rng.normal(size=(n, d))
    return e / np.linalg.norm(e, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_cholesky_matches_the_determinant_definition(seed: int):
    rng = np.random.default_rng(seed)
    weights = np.exp(1.0 * rng.random(12))
    unit = unit_rows(rng, 12, 6)
    assert greedy_map(weights, unit, 8, 1e-6) == greedy_by_determinants(weights, unit, 8, 1e-6)


def test_stops_when_only_near_duplicates_are_left():
    unit = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert sorted(greedy_map(np.array([2.0, 1.0, 1.5, 1.2]), unit, 4, 1e-6)) == [0, 2]


def candidates_with(embeddings: list[np.ndarray | None], scores: list[float]) -> list:
    return [
        candidate(i + 1, 100 + i, score=s, content_embedding=e)
        for i, (e, s) in enumerate(zip(embeddings, scores, strict=True))
    ]


def test_selected_keep_their_score_and_everything_else_gets_zero():
    rng = np.random.default_rng(7)
    n = 200
    embeddings = list(unit_rows(rng, n, 64).astype(np.float32))
    scores = list(rng.random(n) + 0.01)
    out = scored(DppReranker(CONFIG), query(), candidates_with(embeddings, scores))
    selected = [c for c in out if c.dpp_outcome == SELECTED]
    assert len(selected) == 50
    assert all(c.score == scores[c.post_id - 1] for c in selected)
    assert all(c.score == 0.0 and c.dpp_outcome == DROPPED for c in out if c.dpp_outcome != SELECTED)
    top150 = set(np.argsort(-np.array(scores))[:150] + 1)
    assert {c.post_id for c in selected} <= top150  # only the window competes


def test_diversity_beats_a_higher_scored_duplicate():
    same, other = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    cfg = replace(CONFIG, max_selected=2)
    out = scored(DppReranker(cfg), query(), candidates_with([same, same, other], [1.0, 0.99, 0.5]))
    assert [c.dpp_outcome for c in out] == [SELECTED, DROPPED, SELECTED]


def test_falls_back_to_plain_scores_without_embeddings_and_says_so():
    rng = np.random.default_rng(3)
    embeddings: list[np.ndarray | None] = list(unit_rows(rng, 5, 8))
    embeddings[2] = None
    out = scored(DppReranker(CONFIG), query(), candidates_with(embeddings, [5.0, 4.0, 3.0, 2.0, 1.0]))
    assert [c.score for c in out] == [5.0, 4.0, 3.0, 2.0, 1.0]
    assert {c.dpp_outcome for c in out} == {NO_EMBEDDINGS}
    mixed = [np.ones(4, np.float32), np.ones(3, np.float32)]
    out = scored(DppReranker(CONFIG), query(), candidates_with(mixed, [2.0, 1.0]))
    assert [c.score for c in out] == [2.0, 1.0] and out[0].dpp_outcome.startswith("fallback")


def test_disabled_in_the_seed_preset():
    assert DppReranker(CONFIG).enable(query())
    assert not DppReranker(load_config(env={"FORYOU_PRESET": "seed-2026-01"}).dpp).enable(query())
