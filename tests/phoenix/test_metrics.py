import math

import numpy as np
import pytest

from phoenix.metrics import dcg_at_k, mean_ndcg_at_k, ndcg_at_k, pairwise_accuracy, recall_at_k, roc_auc


def test_auc_hand_made() -> None:
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 1, 0, 0])) == 1.0
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([1, 1, 0, 0])) == 0.0
    # Pairs (pos, neg): (0.8,0.7) right, (0.8,0.9) wrong, (0.3,0.7) wrong, (0.3,0.9) wrong -> 1/4.
    assert roc_auc(np.array([0.8, 0.3, 0.7, 0.9]), np.array([1, 1, 0, 0])) == 0.25


def test_auc_ties_count_half() -> None:
    assert roc_auc(np.array([0.5, 0.5, 0.5]), np.array([1, 0, 0])) == 0.5
    # pos 0.5 vs negs {0.5, 0.1}: 0.5 + 1 = 1.5 of 2 pairs.
    assert roc_auc(np.array([0.5, 0.5, 0.1]), np.array([1, 0, 0])) == 0.75


def test_auc_single_class_is_nan() -> None:
    assert math.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_ndcg_hand_made() -> None:
    scores = np.array([3.0, 2.0, 1.0])
    assert ndcg_at_k(scores, np.array([1.0, 0.0, 0.0]), 10) == pytest.approx(1.0)
    # Only relevant item at rank 2: 1/log2(3).
    assert ndcg_at_k(scores, np.array([0.0, 1.0, 0.0]), 10) == pytest.approx(1 / math.log2(3))
    # Relevant item at rank 3 with k=2: nothing found.
    assert ndcg_at_k(scores, np.array([0.0, 0.0, 1.0]), 2) == 0.0
    assert math.isnan(ndcg_at_k(scores, np.zeros(3), 10))


def test_dcg_ties_are_expected_value() -> None:
    # All tied, one relevant out of two: expected DCG = (1 + 1/log2(3)) / 2 whatever the input order.
    expected = (1 + 1 / math.log2(3)) / 2
    assert dcg_at_k(np.zeros(2), np.array([1.0, 0.0]), 10) == pytest.approx(expected)
    assert dcg_at_k(np.zeros(2), np.array([0.0, 1.0]), 10) == pytest.approx(expected)


def test_mean_ndcg_skips_one_sided_groups() -> None:
    scores = [np.array([2.0, 1.0]), np.array([1.0, 2.0]), np.array([1.0, 2.0])]
    labels = [np.array([1, 0]), np.array([1, 1]), np.array([0, 0])]
    assert mean_ndcg_at_k(scores, labels, 10) == pytest.approx(1.0)


def test_pairwise_accuracy_pools_pairs() -> None:
    scores = [np.array([0.9, 0.1, 0.5]), np.array([0.2, 0.2])]
    labels = [np.array([1, 0, 0]), np.array([1, 0])]
    # Group 1: two right pairs; group 2: one tie. (2 + 0.5) / 3.
    assert pairwise_accuracy(scores, labels) == pytest.approx(2.5 / 3)
    assert math.isnan(pairwise_accuracy([np.array([1.0])], [np.array([1])]))


def test_recall_at_k() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    relevant = np.array([True, False, False, True])
    assert recall_at_k(scores, relevant, 1) == 0.5
    assert recall_at_k(scores, relevant, 3) == 0.5
    assert recall_at_k(scores, relevant, 4) == 1.0
    # Four tied items, two relevant, k=2: expected one found of two.
    assert recall_at_k(np.zeros(4), relevant, 2) == pytest.approx(0.5)
    assert math.isnan(recall_at_k(scores, np.zeros(4, dtype=bool), 2))
