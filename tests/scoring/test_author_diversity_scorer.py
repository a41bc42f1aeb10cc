import pytest

from scoring.author_diversity import AuthorDiversityScorer, diversity_multiplier
from scoring.offset import ScoreOffset
from tests.scoring.scoring_fakes import CONFIG, candidate, query, scored

OFFSET = ScoreOffset.from_weights(CONFIG.weights, 1.0)


def weighted(post_id: int, author_id: int, score: float):
    return candidate(post_id, author_id, weighted_score=score, score=score)


def test_multiplier_formula():
    assert diversity_multiplier(0, 0.7, 0.1) == pytest.approx(1.0)
    assert diversity_multiplier(1, 0.7, 0.1) == pytest.approx(0.9 * 0.7 + 0.1)
    assert diversity_multiplier(2, 0.7, 0.1) == pytest.approx(0.9 * 0.49 + 0.1)
    assert diversity_multiplier(50, 0.7, 0.1) == pytest.approx(0.1, abs=1e-6)
    assert diversity_multiplier(3, 1.0, 0.1) == 1.0  # decay 1: no penalty


def test_three_posts_of_one_author_decay_in_weighted_score_order():
    # Given out of order; the author's best post (id 2) keeps its score.
    candidates = [weighted(1, 7, 2.0), weighted(2, 7, 3.0), weighted(3, 8, 2.5), weighted(4, 7, 1.5)]
    out = scored(AuthorDiversityScorer(0.7, 0.1, OFFSET), query(), candidates)
    assert [c.post_id for c in out] == [1, 2, 3, 4]
    m = {c.post_id: c.diversity_multiplier for c in out}
    assert m[2] == pytest.approx(1.0) and m[3] == pytest.approx(1.0)
    assert m[1] == pytest.approx(0.73)
    assert m[4] == pytest.approx(0.541)
    scores = {c.post_id: c.score for c in out}
    assert scores[2] == pytest.approx(3.0)
    assert scores[1] == pytest.approx(1.0 + 0.73 * 1.0)
    assert scores[4] == pytest.approx(1.0 + 0.541 * 0.5)
    assert [c.weighted_score for c in out] == [2.0, 3.0, 2.5, 1.5]  # not this scorer's field


def test_negative_posts_are_lowered_within_their_band():
    out = scored(AuthorDiversityScorer(0.7, 0.1, OFFSET), query(), [weighted(1, 7, 2.0), weighted(2, 7, 0.4)])
    assert out[1].diversity_multiplier == pytest.approx(0.73)
    assert out[1].score == pytest.approx(0.4 * 0.73)
    # Two negative posts of one author: the second is lowered, as among positive ones.
    out = scored(AuthorDiversityScorer(0.7, 0.1, OFFSET), query(), [weighted(3, 8, 0.6), weighted(4, 8, 0.5)])
    assert [c.score for c in out] == pytest.approx([0.6, 0.5 * 0.73])


def test_unscored_candidates_get_no_multiplier():
    out = scored(AuthorDiversityScorer(0.7, 0.1, OFFSET), query(), [candidate(1, 7), weighted(2, 7, 2.0)])
    assert out[0].diversity_multiplier is None and out[0].score is None
    assert out[1].diversity_multiplier == 1.0


def test_many_authors_each_decay_in_their_own_weighted_order():
    # Interleaved authors with ties: each author's k-th best (ties in candidate order) gets multiplier k.
    weights = [2.0, 1.0, 2.0, 3.0, 1.0, 2.0, 0.5, 3.0]
    authors = [7, 8, 7, 8, 7, 9, 9, 7]
    out = scored(AuthorDiversityScorer(0.5, 0.0, OFFSET), query(),
                 [weighted(i, a, w) for i, (a, w) in enumerate(zip(authors, weights, strict=True), start=1)])
    ranked = sorted(range(len(weights)), key=lambda i: -weights[i])
    position: dict[int, int] = {}
    expected = [0.0] * len(weights)
    for i in ranked:
        expected[i] = diversity_multiplier(position.get(authors[i], 0), 0.5, 0.0)
        position[authors[i]] = position.get(authors[i], 0) + 1
    assert [c.diversity_multiplier for c in out] == expected
