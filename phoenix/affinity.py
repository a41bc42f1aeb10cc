"""Content affinity: how close a candidate's content is to the content of what the user engaged with.

Why: a transformer can learn "this user engages with posts like these" from history and candidate content
tokens, but it learns that product slowly (a cold-start check where only content separates liked from
ignored posts stayed at chance after 400 steps). Two cosines give it directly, as inputs of the candidate
alone (so candidate isolation holds):
- to the user's *signed* content profile: the mean of the history's content vectors, each entry weighted
  +1 when it holds a positive action and -1 when it holds a negative one (not interested, block, mute,
  report: "less of this"; a negative wins over a positive on the same entry);
- the largest cosine between the candidate and any one positively engaged history entry;
- with `served_affinity`: the user's engagement rate on served posts like the candidate. Every post served
  to the user (the served history, merged with the engaged history; in a log, every line) counts +1 when
  it got a positive action, -1 when it got a negative one and 0 when it was served and ignored; the rate
  is the mean of those signs weighted by exp(cosine to the candidate / SERVED_TEMPERATURE), shrunk towards
  the user's overall rate by SERVED_PRIOR_WEIGHT pseudo-posts. The engaged history says what a user
  likes but not what they saw and passed over: a user who engages with every football post they are shown
  and a user who engaged with the one football post among fifty have the same engaged history.

Vectors are centred first: the config's `content_center` (the mean content vector of the posts training saw,
fitted by `foryou train`) is subtracted before the cosines. Raw sentence vectors share a large common
direction (every text is "some text"), so raw cosines between unrelated posts are well above zero and the
profile's mean is dominated by that direction. Measured on the demo world's held-out requests (pairwise
accuracy of the first cosine alone against the ground truth): raw vectors, every history entry +1: 0.568;
centred: 0.620; centred and signed: 0.661 (docs/phoenix-training.md). A config without a centre (older
checkpoints) reads raw vectors.

Each input is bucketed into `affinity_buckets` - 1 bins plus bucket 0 = unknown (no content for the
candidate, or no positively engaged history entry with content, or no served post with content). The bins
are equally filled: `foryou train` fits each input's edges on the quantiles of its values over the training
examples and keeps them in the config (`affinity_edges`); a config without them (older checkpoints) uses
equal-width bins over [-1, 1]. `phoenix.model` adds one row of a [cfg.num_affinity_inputs, A, D] table per
input to the candidate token, as it does for the post age.

Measured on the demo world's held-out requests (pairwise accuracy / NDCG@10 of one input alone against the
ground truth, docs/phoenix-training.md): signed profile cosine 0.662 / 0.798, served engagement rate 0.684 /
0.818 (temperatures 0.2-0.5 within 0.005 of each other; the newest 128 served posts only: 0.01 worse).
Equal-width bins waste most rows: the served rate lies mostly between -0.2 and 0.6, a few of 15 equal bins;
so bucketed it ranked 0.648, in 15 equally filled bins 0.679.
"""

import numpy as np

from phoenix.config import PhoenixConfig
from topics.actions import NEGATIVE_ACTIONS, PHOENIX_ACTIONS

UNKNOWN_AFFINITY_BUCKET = 0
SERVED_TEMPERATURE = 0.3  # cosine scale of the served-rate weights: exp(cos / T)
SERVED_PRIOR_WEIGHT = 2.0  # pseudo-posts at the user's overall rate, so a few similar posts do not decide
_NEGATIVE_HEADS = np.array([name in NEGATIVE_ACTIONS for name in PHOENIX_ACTIONS])


def _unit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12), norms[..., 0] > 1e-6


def history_signs(history_actions: np.ndarray) -> np.ndarray:
    """[..., S] +1 (a positive action), -1 (a negative action, which wins) or 0 from multi-hots [..., S, 19]."""
    actions = np.asarray(history_actions) > 0
    negative = actions[..., _NEGATIVE_HEADS].any(-1)
    positive = actions[..., ~_NEGATIVE_HEADS].any(-1)
    return np.where(negative, -1.0, np.where(positive, 1.0, 0.0)).astype(np.float32)


def served_rate(
    candidates: np.ndarray, candidate_known: np.ndarray, served: np.ndarray, served_signs: np.ndarray,
    served_known: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """([B, C] rate in [-1, 1], [B, C] known) from centred unit candidate vectors [B, C, E], served vectors
    [B, M, E], their signs [B, M] (+1 / -1 / 0, module docstring) and which served rows count [B, M]."""
    count = served_known.sum(-1)  # [B]
    overall = (served_signs * served_known).sum(-1) / np.maximum(count, 1)  # [B]
    cosines = np.einsum("bce,bme->bcm", candidates, served)
    weights = np.exp(cosines / SERVED_TEMPERATURE) * served_known[:, None, :]  # [B, C, M]
    rate = ((weights * served_signs[:, None, :]).sum(-1) + SERVED_PRIOR_WEIGHT * overall[:, None]) / (
        weights.sum(-1) + SERVED_PRIOR_WEIGHT
    )
    return rate, candidate_known & (count > 0)[:, None]


def content_affinity(cfg: PhoenixConfig, *inputs: np.ndarray | None) -> np.ndarray:
    """[B, C, cfg.num_affinity_inputs] int32 buckets of `affinity_values(cfg, *inputs)`, for a config with
    `affinity_buckets` (the inputs as `affinity_values` reads them)."""
    return bucket_affinity(cfg, *affinity_values(cfg, *inputs))


def bucket_edges(cfg: PhoenixConfig) -> np.ndarray:
    """[N, A - 2] bin edges of the N inputs: the config's fitted `affinity_edges`, else equal width over [-1, 1]."""
    if cfg.affinity_edges:
        return np.asarray(cfg.affinity_edges, np.float64)
    equal = -1.0 + 2.0 * np.arange(1, cfg.affinity_buckets - 1) / (cfg.affinity_buckets - 1)
    return np.tile(equal, (cfg.num_affinity_inputs, 1))


def bucket_affinity(cfg: PhoenixConfig, values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """[..., N] int32 buckets (1..A-1 by the edges, 0 = unknown) of values [..., N] and known [..., N]."""
    edges = bucket_edges(cfg)
    bins = np.stack([1 + np.searchsorted(edges[k], values[..., k], side="right") for k in range(edges.shape[0])], -1)
    return np.where(known, bins, UNKNOWN_AFFINITY_BUCKET).astype(np.int32)


def fit_edges(values: np.ndarray, known: np.ndarray, num_buckets: int) -> tuple[tuple[float, ...], ...]:
    """Per input, the A - 2 edges that split its known values [M, N] into A - 1 equally filled bins; an input
    never known keeps equal-width bins over [-1, 1]."""
    quantiles = np.linspace(0.0, 1.0, num_buckets)[1:-1]
    equal = -1.0 + 2.0 * np.arange(1, num_buckets - 1) / (num_buckets - 1)
    edges = []
    for k in range(values.shape[-1]):
        seen = values[known[:, k], k]
        edges.append(tuple(round(float(x), 6) for x in (np.quantile(seen, quantiles) if seen.size else equal)))
    return tuple(edges)


def affinity_values(
    cfg: PhoenixConfig,
    history_content: np.ndarray,
    history_actions: np.ndarray,
    history_mask: np.ndarray,
    candidate_content: np.ndarray,
    served_content: np.ndarray | None = None,
    served_actions: np.ndarray | None = None,
    served_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The inputs before bucketing: values [B, C, N] in [-1, 1] and which are known [B, C, N], from history
    vectors [B, S, E], actions [B, S, 19] and mask [B, S], and candidate vectors [B, C, E]. A config with
    `served_affinity` also reads the served posts' vectors [B, M, E], actions [B, M, 19] (all zero for a
    post served and ignored) and mask [B, M]; without them (None) that input is unknown."""
    if cfg.affinity_buckets < 2:
        raise ValueError("affinity needs the unknown bucket plus at least one bin")
    center = np.asarray(cfg.content_center, np.float32) if cfg.content_center else np.float32(0.0)
    history_raw = np.asarray(history_content, np.float32)
    candidate_raw = np.asarray(candidate_content, np.float32)
    # Unknown content (all zeros) stays unknown: it is not centred into a vector.
    history_known = np.abs(history_raw).sum(-1) > 0
    candidate_known = np.abs(candidate_raw).sum(-1) > 0
    history, history_unit = _unit(history_raw - center)
    candidates, candidate_unit = _unit(candidate_raw - center)
    signs = history_signs(history_actions) * (history_known & history_unit & np.asarray(history_mask, bool))
    profile, profile_known = _unit((history * signs[..., None]).sum(1))  # [B, E]
    profile_cos = np.einsum("bce,be->bc", candidates, profile)
    entry_cos = np.einsum("bce,bse->bcs", candidates, history)
    liked = signs > 0
    max_cos = np.where(liked[:, None, :], entry_cos, -np.inf).max(-1, initial=-np.inf)
    candidate_ok = candidate_known & candidate_unit
    known = candidate_ok & (profile_known & liked.any(-1))[:, None]
    values = [profile_cos, np.where(known, max_cos, 0.0)]
    knowns = [known, known]
    if cfg.served_affinity:
        if served_content is None or served_actions is None or served_mask is None:
            values.append(np.zeros_like(profile_cos))
            knowns.append(np.zeros_like(known))
        else:
            served_raw = np.asarray(served_content, np.float32)
            served, served_unit = _unit(served_raw - center)
            served_ok = (np.abs(served_raw).sum(-1) > 0) & served_unit & np.asarray(served_mask, bool)
            rate, rate_known = served_rate(candidates, candidate_ok, served, history_signs(served_actions), served_ok)
            values.append(np.where(rate_known, rate, 0.0))
            knowns.append(rate_known)
    return np.stack(values, -1), np.stack(knowns, -1)
