"""Residual k-means semantic IDs: fitting, greedy encoding, model ids."""

import numpy as np
import pytest

from phoenix.semantic_ids import encode, fit_codebooks, model_ids, reconstruction_error


def _clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, 6)).astype(np.float32) * 10
    labels = rng.integers(0, 4, 400)
    return centres[labels] + rng.standard_normal((400, 6)).astype(np.float32) * 0.1, labels


def test_level_zero_finds_the_clusters_and_later_levels_refine() -> None:
    vectors, labels = _clusters()
    codebooks = fit_codebooks(vectors, levels=3, size=4, seed=1)
    assert codebooks.shape == (3, 4, 6) and codebooks.dtype == np.float32
    codes = encode(vectors, codebooks)
    assert codes.shape == (400, 3) and codes.min() >= 0 and codes.max() < 4
    # Level 0 partitions the points exactly as the planted clusters do (up to naming).
    assert all(len(set(codes[labels == c, 0])) == 1 for c in range(4))
    assert len(set(codes[:, 0])) == 4
    errors = reconstruction_error(vectors, codebooks)
    assert errors[0] < 0.1 and errors[2] < errors[0]
    np.testing.assert_array_equal(fit_codebooks(vectors, 3, 4, seed=1), codebooks)  # seeded: deterministic


def test_fewer_distinct_vectors_than_codes_fit_and_pad() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], np.float32)
    codebooks = fit_codebooks(vectors, levels=2, size=8)
    codes = encode(vectors, codebooks)
    assert codes[0, 0] == codes[2, 0] != codes[1, 0] and codes[:, 0].max() < 2  # padding rows are never chosen
    np.testing.assert_allclose(reconstruction_error(vectors, codebooks), 0.0, atol=1e-9)


def test_model_ids_shift_codes_and_mark_unknown_content() -> None:
    vectors, _ = _clusters(2)
    codebooks = fit_codebooks(vectors, 2, 4)
    known = np.arange(400) % 3 != 0
    ids = model_ids(vectors, codebooks, known)
    np.testing.assert_array_equal(ids[known], encode(vectors, codebooks)[known] + 1)
    assert not ids[~known].any()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one level"):
        fit_codebooks(np.ones((4, 2), np.float32), 0, 4)
    with pytest.raises(ValueError, match="non-empty"):
        fit_codebooks(np.zeros((0, 2), np.float32), 1, 4)
