"""Phoenix with post content: content off is the published model; content reaches ranking, history,
candidate isolation holds, and the serving path (Ranker) equals the reference model."""

import dataclasses

import jax
import numpy as np

from phoenix import model
from phoenix.affinity import content_affinity
from phoenix.batch import make_batch
from phoenix.config import PhoenixConfig
from phoenix.posts import ContentTable
from phoenix.ranker import Ranker
from phoenix.semantic_ids import fit_codebooks, model_ids
from tests.phoenix.test_ranker import BUCKETS, _candidates, _history
from tests.phoenix.test_ranker import TINY as RANKER_TINY
from topics.actions import PHOENIX_ACTIONS

E, LEVELS, SIZE = 12, 2, 8
CONTENT = dataclasses.replace(
    RANKER_TINY,
    content_dim=E,
    semantic_id_levels=LEVELS,
    semantic_id_size=SIZE,
    content_encoder="test",
    affinity_buckets=6,
)
# The full-sequence oracle: isolation is proven on it, and the forward (what trains and serves) equals it.
rank = jax.jit(model.full_sequence_logits, static_argnums=1)
forward = jax.jit(model.rank_logits, static_argnums=1)


def _random_content_params(cfg: PhoenixConfig, seed: int) -> model.Params:
    """Init params with the (zero-initialised) affinity table drawn at random, so affinity matters too."""
    params = model.init_params(cfg, jax.random.PRNGKey(seed))
    table = np.random.default_rng(seed).standard_normal((2, cfg.affinity_buckets, cfg.emb_size)).astype(np.float32)
    return {**params, "phoenix": {**params["phoenix"], "affinity_table": table}}


def _table(post_ids: list[int], seed: int) -> tuple[ContentTable, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.unique(np.asarray(post_ids, np.int64))
    vectors = rng.standard_normal((len(ids), E)).astype(np.float32)
    codebooks = fit_codebooks(vectors, LEVELS, SIZE, seed=0)
    return ContentTable(ids, vectors, model_ids(vectors, codebooks, np.ones(len(ids), bool))), codebooks


def test_content_off_is_the_published_model_and_content_is_an_added_token() -> None:
    plain = model.init_params(RANKER_TINY, jax.random.PRNGKey(1))
    assert not any("content" in k or "semantic" in n for k, v in plain.items() for n in v)
    with_content = model.init_params(CONTENT, jax.random.PRNGKey(1))
    # The other params are drawn from the same per-name streams; with the content weights zeroed, the model
    # with content is the published one.
    with_content = {
        k: {n: np.zeros_like(a) if "content" in k or "semantic" in n or "affinity" in n else a for n, a in v.items()}
        for k, v in with_content.items()
    }
    history, cands = _history(1, 9), _candidates(2, 6)
    table, _ = _table([e.post_id for e in history] + [p for p, _ in cands], 3)
    expected = rank(plain, RANKER_TINY, make_batch(RANKER_TINY, [5], [history], [cands]))
    got = rank(with_content, CONTENT, make_batch(CONTENT, [5], [history], [cands], content=table))
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-6)
    new_fields = ("content_dim", "semantic_id_levels", "semantic_id_size", "content_encoder", "affinity_buckets")
    old = {k: v for k, v in CONTENT.to_dict().items() if k not in new_fields}  # a config saved before content
    assert PhoenixConfig.from_dict(old) == dataclasses.replace(
        CONTENT, content_dim=0, semantic_id_levels=0, semantic_id_size=256, content_encoder="", affinity_buckets=0
    )


def test_content_reaches_candidates_and_history_and_isolation_holds() -> None:
    params = _random_content_params(CONTENT, 4)
    history, cands = _history(5, 9), _candidates(6, 6)
    ids = [e.post_id for e in history] + [p for p, _ in cands]
    table, _ = _table(ids, 7)
    batch = make_batch(CONTENT, [5], [history], [cands], content=table)
    base = np.asarray(rank(params, CONTENT, batch))[0]
    np.testing.assert_allclose(np.asarray(forward(params, CONTENT, batch))[0], base, atol=2e-5, rtol=1e-5)
    # Another vector for candidate 0's post only.
    changed_vectors = table.vectors.copy()
    changed_vectors[np.searchsorted(table.post_ids, cands[0][0])] += 1.0
    changed = dataclasses.replace(table, vectors=changed_vectors)
    other = np.asarray(rank(params, CONTENT, make_batch(CONTENT, [5], [history], [cands], content=changed)))[0]
    assert np.abs(other[0] - base[0]).max() > 1e-3
    np.testing.assert_allclose(other[1:], base[1:], atol=1e-5)  # candidate isolation: the others are untouched
    # Unknown content for every history post changes every candidate's scores.
    history_unknown = dataclasses.replace(
        table, vectors=np.where(np.isin(table.post_ids, [p for p, _ in cands])[:, None], table.vectors, 0.0)
    )
    forgot = np.asarray(rank(params, CONTENT, make_batch(CONTENT, [5], [history], [cands], content=history_unknown)))
    assert np.abs(forgot[0] - base).max() > 1e-3


def test_ranker_reads_content_from_its_source_and_equals_the_reference() -> None:
    params = _random_content_params(CONTENT, 8)
    history, cands = _history(9, 11), _candidates(10, 40)  # two candidate chunks
    table, codebooks = _table([e.post_id for e in history] + [p for p, _ in cands], 11)

    def source(post_ids: list[int]) -> np.ndarray:
        return table.lookup(np.asarray(post_ids, np.int64), 0)[0]

    ranker = Ranker(CONTENT, params, "content", candidate_buckets=BUCKETS, codebooks=codebooks, content_source=source)
    ranker.warmup()
    compiled = ranker._state.fns.score._cache_size()
    probs = ranker.score(5, history, cands)
    expected = jax.nn.sigmoid(rank(params, CONTENT, make_batch(CONTENT, [5], [history], [cands], content=table)))
    np.testing.assert_allclose(probs, np.asarray(expected)[0], atol=1e-5)
    given = ranker.score(5, history, cands, content=source([p for p, _ in cands]))  # the caller's vectors
    np.testing.assert_allclose(given, probs, atol=1e-6)
    assert ranker._state.fns.score._cache_size() == compiled
    # Retrieval: the candidate tower embeds each post with its stored content.
    post_ids = np.array([p for p, _ in cands[:3]], np.int64)
    author_ids = np.array([a for _, a in cands[:3]], np.int64)
    embedded = ranker._embedder(ranker._state)(post_ids, author_ids)
    vectors, ids = table.lookup(post_ids, LEVELS)
    hashes = [np.asarray(x) for x in make_batch(CONTENT, [1], [[]], [cands[:3]]).candidate_post_hashes]
    authors = make_batch(CONTENT, [1], [[]], [cands[:3]]).candidate_author_hashes[0]
    reference = model.candidate_embedding(params, CONTENT, hashes[0], authors, vectors, ids)
    np.testing.assert_allclose(embedded, np.asarray(reference), atol=1e-5)
    blind = Ranker(CONTENT, params, "blind", candidate_buckets=BUCKETS, codebooks=codebooks)
    assert np.abs(blind._embedder(blind._state)(post_ids, author_ids) - embedded).max() > 1e-3


def test_content_affinity_is_the_candidates_cosines_to_the_signed_centred_history() -> None:
    cfg = dataclasses.replace(CONTENT, content_dim=2, semantic_id_levels=0, affinity_buckets=5)
    liked, hidden = np.zeros(19, np.float32), np.zeros(19, np.float32)
    liked[PHOENIX_ACTIONS.index("favorite")] = 1
    hidden[PHOENIX_ACTIONS.index("not_interested")] = 1
    hidden[PHOENIX_ACTIONS.index("click")] = 1  # a negative wins over a positive on the same entry
    history = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0]]], np.float32)
    actions = np.stack([liked, liked, liked, hidden, liked])[None]
    mask = np.array([[True, True, True, True, False]])  # the third entry has no content, the last is padding
    candidates = np.array([[[2.0, 0.0], [-1.0, 0.0], [0.0, 3.0], [0.0, 0.0]]], np.float32)
    got = content_affinity(cfg, history, actions, mask, candidates)
    # Profile: (1, 0) + (1, 0) - (0, 1), normalised; cosines (0.89, -0.89, -0.45); the best liked entry
    # (1, 0): (1, -1, 0). Bins of width 0.5 over [-1, 1], from 1; unknown candidate content: 0.
    np.testing.assert_array_equal(got[0], [[4, 4], [1, 1], [2, 3], [0, 0]])
    assert not content_affinity(cfg, np.zeros_like(history), actions, mask, candidates).any()  # no history content
    only_hidden = np.stack([hidden] * 5)[None]
    assert not content_affinity(cfg, history, only_hidden, mask, candidates).any()  # nothing liked: unknown
    # Centred on (1, 0.5): the history's (1, 0) becomes (0, -0.5), so (2, 0) -> (1, -0.5) is far from it.
    centred = dataclasses.replace(cfg, content_center=(1.0, 0.5))
    got = content_affinity(centred, history[:, :2], actions[:, :2], mask[:, :2], candidates[:, :1])
    assert got[0, 0, 1] == 3  # cosine 0.45, where uncentred it is 1
