"""Semantic IDs: residual k-means quantization of content vectors, as the published system does.

Level 0 clusters the content vectors into K centroids; level l clusters what levels 0..l-1 left over (the
residual). A post's semantic ID is its L centroid indices, coarse to fine. Codebooks are fitted by
`foryou train` on the posts file (faiss k-means, seeded) and saved in the checkpoint; encoding is greedy
(nearest centroid per level), in numpy.

The model's id for level l is code + 1: id 0 means "no content" (a post whose content is unknown), whose
rows are zero like every padding id.

With fewer distinct vectors than K, a level fits as many centroids as it can and fills the remaining rows
with copies of centroid 0; the nearest-centroid search returns the first of equals, so copies are never
chosen and their embedding rows stay unused.
"""

from typing import Final

import faiss
import numpy as np

KMEANS_ITERATIONS: Final = 20


def fit_codebooks(vectors: np.ndarray, levels: int, size: int, seed: int = 0) -> np.ndarray:
    """Codebooks [levels, size, E] float32 fitted to vectors [N, E] by residual k-means."""
    if levels < 1 or size < 1:
        raise ValueError("semantic IDs need at least one level of at least one code")
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    if data.ndim != 2 or len(data) == 0:
        raise ValueError("fitting codebooks needs a non-empty [N, E] array of content vectors")
    faiss.omp_set_num_threads(1)  # small problems; an OpenMP team on a busy 2-core machine only slows it
    codebooks = np.empty((levels, size, data.shape[1]), np.float32)
    residual = data.copy()
    for level in range(levels):
        distinct = np.unique(residual, axis=0)
        k = min(size, len(distinct))
        if k == size:
            kmeans = faiss.Kmeans(data.shape[1], k, niter=KMEANS_ITERATIONS, seed=seed + level, verbose=False)
            # faiss warns below 39 points per centroid and samples above 256: both are fine here.
            kmeans.cp.min_points_per_centroid = 1
            kmeans.train(residual)
            centroids = kmeans.centroids
        else:
            centroids = distinct  # every distinct residual is its own centroid
        codebooks[level, :k] = centroids
        codebooks[level, k:] = centroids[0]
        residual -= codebooks[level, _nearest(residual, codebooks[level])]
    return codebooks


def _nearest(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    distances = (centroids * centroids).sum(1)[None, :] - 2.0 * vectors @ centroids.T
    return distances.argmin(1)


def encode(vectors: np.ndarray, codebooks: np.ndarray) -> np.ndarray:
    """Codes [N, levels] int32 in [0, size) of vectors [N, E] (greedy, level by level)."""
    residual = np.array(vectors, dtype=np.float32)
    codes = np.empty((len(residual), codebooks.shape[0]), np.int32)
    for level, centroids in enumerate(codebooks):
        codes[:, level] = _nearest(residual, centroids)
        residual -= centroids[codes[:, level]]
    return codes


def model_ids(vectors: np.ndarray, codebooks: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The model's semantic-ID inputs [N, levels] int32: code + 1 where the content is `known`, else 0."""
    ids = encode(vectors, codebooks) + 1
    return np.where(np.asarray(known, bool)[:, None], ids, 0).astype(np.int32)


def reconstruction_error(vectors: np.ndarray, codebooks: np.ndarray) -> np.ndarray:
    """Mean squared residual after each level [levels] (for logs: how much each level explains)."""
    residual = np.array(vectors, dtype=np.float32)
    errors = []
    for centroids in codebooks:
        residual -= centroids[_nearest(residual, centroids)]
        errors.append(float((residual * residual).sum(1).mean()))
    return np.asarray(errors)
