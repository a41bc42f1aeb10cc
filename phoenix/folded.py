"""The Phoenix forward (prefix and candidate halves) over folded weights: the worker's inference path.

`model.encode_prefix` / `model.score_from_prefix` are the forward; this computes the same function (equal
up to float32 rounding, checked by tests/phoenix/test_folded.py) with fewer and larger matrix products,
which is what a 2-core CPU is good at. The element-wise math (RMSNorm, soft cap, rotary frequencies, mask
value, L2 norm) is the model's own (`phoenix.model`); what differs is where the weights are multiplied.

Once per checkpoint (`fold_weights`):
- the candidate input projection is split per input block, so a candidate token is the sum of gathered,
  already-projected rows of the post/author/surface tables (no [N, 5D] x [5D, D] product per request),
  plus, for a config with post ages, the raw `age_table` row of the candidate's age bucket (the model adds
  it after the projection, so it needs no folding);
- RMSNorm scales are folded into the weights that follow them; Q, K and V become one matrix, gate and up
  another; since every candidate sits at the same rotary position, the rotation (and 1/sqrt(key_size)) is
  a fixed linear map folded into the query and key weights.
Once per request (`FoldedPrefix`): each layer's prefix keys are transposed per head, so attention is two
plain 2-D products per query head, [N, K] x [K, T] and [N, T] x [T, K], plus the candidate's own key and
value as one extra softmax term (no candidate-by-candidate attention at all).

The candidate half (`candidate_logits`, the reference being `model.score_from_prefix`) scores one request's
candidates, one `phoenix.batch.Candidates` without the batch axis, against its `FoldedPrefix`.

The prefix half (`prefix_keys_values`, the reference being `model.encode_prefix`; both take the history as
one `phoenix.batch.History`) computes only what scoring needs: the last layer's keys and values come
straight from its input, so that layer's attention and feed-forward over the history (and the final norm
feeding the user tower) are never run; the history token's action and surface blocks are folded into
[19, D] and [NUM_SURFACES, D] matrices, RMSNorm scales and 1/sqrt(key_size) into the projections, the
rotary cos/sin come from a per-position table, and the keys/values come out already in `FoldedPrefix`
layout. `prefix_and_user` runs the same pass through the last layer and the final norm as well, for the
user tower's embedding (`model.user_embedding_from_prefix`, the final norm scale folded into the retrieval
projection), so retrieval and ranking share one encoding.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from phoenix import model
from phoenix.batch import Candidates, History
from phoenix.config import PhoenixConfig
from phoenix.model import MASKED, l2_normalise, rms_normalise, rotary_frequencies, soft_cap
from topics.actions import NUM_SURFACES

_NET = "phoenix"
# Soft-capped attention logits lie in [-cap, cap], so exp(logit - cap) lies in [exp(-2 cap), 1]: it cannot
# overflow, and up to this cap not underflow to zero either, so the candidates' softmax is shifted by the
# constant cap instead of each row's max (one reduction and one pass over [N, T] fewer per head). A larger
# cap falls back to the row max.
FIXED_SHIFT_MAX_CAP = 40.0


class LayerWeights(NamedTuple):
    qkv: jax.Array  # [D, (Hq + 2 Hkv) K], attn_in scale, rotation and 1/sqrt(K) folded in
    out: jax.Array  # [Hq K, D]
    attn_out_scale: jax.Array  # [D]
    gate_up: jax.Array  # [D, 2F], ffn_in scale folded in
    down: jax.Array  # [F, D]
    ffn_out_scale: jax.Array  # [D]


class ServingWeights(NamedTuple):
    post_rows: jax.Array  # [H, post_vocab, D] post table projected by each hash's input block
    author_rows: jax.Array  # [H, author_vocab, D]
    surface_rows: jax.Array  # [NUM_SURFACES, D], padding row zero
    age_rows: jax.Array | None  # [age_buckets, D]: the model's age_table as is; None for a config without ages
    content: "ContentWeights | None"  # None for a config without content
    affinity_rows: jax.Array | None  # [inputs, A, D]: the model's affinity_table; None without affinity
    layers: tuple[LayerWeights, ...]
    unembed: jax.Array  # [D, 19], final norm scale folded in
    unembed_bias: jax.Array  # [19]


class ContentWeights(NamedTuple):
    """The content token's weights as the model has them (added after the projections, so nothing folds)."""

    proj: jax.Array  # [E, D]
    semantic_id_rows: jax.Array  # [L, K+1, D], row 0 of every level zero (content unknown)


def fold_content(params: model.Params, cfg: PhoenixConfig) -> ContentWeights | None:
    if not cfg.has_content:
        return None
    rows = (
        np.stack([_p(params, "", f"semantic_id_{level}_table") for level in range(cfg.semantic_id_levels)])
        if cfg.semantic_id_levels
        else np.zeros((0, cfg.semantic_id_size + 1, cfg.emb_size))
    )
    rows[:, 0] = 0.0
    return ContentWeights(proj=_f32(_p(params, "content_proj", "w")), semantic_id_rows=_f32(rows))


def content_tokens(weights: ContentWeights, content: jax.Array, semantic_ids: jax.Array) -> jax.Array:
    """[T, E] content vectors and [T, L] semantic ids -> [T, D], as `model.PhoenixNet.content_tokens`."""
    tokens = content @ weights.proj
    for level in range(weights.semantic_id_rows.shape[0]):
        tokens = tokens + weights.semantic_id_rows[level][semantic_ids[:, level]]
    return tokens


class PrefixLayerWeights(NamedTuple):
    # Separate products rather than one wide one: ~129 rows are too few for XLA to split a product across
    # cores, but independent products run concurrently.
    query: jax.Array  # [D, Hq K], attn_in scale and 1/sqrt(K) folded in; rotary applied after
    key: jax.Array  # [D, Hkv K], attn_in scale folded in; rotary applied after
    value: jax.Array  # [D, Hkv K], attn_in scale folded in
    out: jax.Array  # [Hq K, D]
    attn_out_scale: jax.Array  # [D]
    gate: jax.Array  # [D, F], ffn_in scale folded in
    up: jax.Array  # [D, F], ffn_in scale folded in
    down: jax.Array  # [F, D]
    ffn_out_scale: jax.Array  # [D]


class PrefixWeights(NamedTuple):
    user_table: jax.Array  # [user_vocab, D] (the params' own array, not a copy)
    user_proj: jax.Array  # [H D, D]
    post_table: jax.Array  # [post_vocab, D] (the params' own array)
    author_table: jax.Array  # [author_vocab, D] (the params' own array)
    post_proj: jax.Array  # [H D, D]: the post blocks of the history projection
    author_proj: jax.Array  # [H D, D]: the author blocks
    action_proj: jax.Array  # [19, D]: action projection times its history-projection block
    surface_rows: jax.Array  # [NUM_SURFACES, D]: surface table times its block, padding row zero
    content: ContentWeights | None  # None for a config without content
    layers: tuple[PrefixLayerWeights, ...]  # every layer but the last
    last: PrefixLayerWeights  # the last layer: its keys and values for scoring, all of it for the user tower
    user_tower: jax.Array  # [D, R]: the user retrieval projection, final norm scale folded in
    rotary_cos: jax.Array  # [S+1, K/2]: cos of every rotary position's angles (a table: XLA would otherwise
    rotary_sin: jax.Array  # [S+1, K/2]   recompute the trigonometry inside every fusion that uses it)


class FoldedPrefix(NamedTuple):
    keys: jax.Array  # [L, Hkv, K, T] transposed, ready to multiply queries [N, K]
    values: jax.Array  # [L, Hkv, T, K]
    bias: jax.Array  # [T]: 0 for valid prefix positions, large negative for padding


def _p(params: model.Params, module: str, name: str) -> np.ndarray:
    key = _NET if not module else f"{_NET}/~/{module}"
    return np.asarray(params[key][name], np.float64)


def _rotation(cfg: PhoenixConfig) -> np.ndarray:
    """[K, K] matrix R with x @ R == rotary(x) at the candidates' position (rotate-half convention)."""
    angle = cfg.candidate_position * rotary_frequencies(cfg.key_size)
    cos, sin = np.diag(np.cos(angle)), np.diag(np.sin(angle))
    return np.block([[cos, sin], [-sin, cos]])


def fold_weights(params: model.Params, cfg: PhoenixConfig) -> ServingWeights:
    """Per-checkpoint preparation (float64 on the host, stored as float32)."""
    d, h = cfg.emb_size, cfg.num_hashes
    w_in = _p(params, "candidate_proj", "w")  # rows: [post x H, author x H, surface] blocks of D
    post_table, author_table = _p(params, "", "post_table"), _p(params, "", "author_table")
    post_rows = np.stack([post_table @ w_in[i * d : (i + 1) * d] for i in range(h)])
    author_rows = np.stack([author_table @ w_in[(h + i) * d : (h + i + 1) * d] for i in range(h)])
    surface_rows = _p(params, "", "surface_table") @ w_in[2 * h * d :]
    # Hash 0 means an absent id (e.g. author 0): the model zeroes its rows, so the folded rows must be zero too.
    post_rows[:, 0] = author_rows[:, 0] = surface_rows[0] = 0.0
    rot = _rotation(cfg)
    hq, hkv, k = cfg.num_q_heads, cfg.num_kv_heads, cfg.key_size
    layers = []
    for i in range(cfg.num_layers):
        prefix = f"layer_{i}/~/"
        attn_in = _p(params, prefix + "attn_in_norm", "scale")[:, None]
        wq = (attn_in * _p(params, prefix + "attention/~/query", "w")).reshape(d, hq, k) @ rot * k**-0.5
        wk = (attn_in * _p(params, prefix + "attention/~/key", "w")).reshape(d, hkv, k) @ rot
        wv = attn_in * _p(params, prefix + "attention/~/value", "w")
        ffn_in = _p(params, prefix + "ffn_in_norm", "scale")[:, None]
        gate_up = np.concatenate([_p(params, prefix + "ffn/~/gate", "w"), _p(params, prefix + "ffn/~/up", "w")], 1)
        layers.append(
            LayerWeights(
                qkv=_f32(np.concatenate([wq.reshape(d, -1), wk.reshape(d, -1), wv], 1)),
                out=_f32(_p(params, prefix + "attention/~/out", "w")),
                attn_out_scale=_f32(_p(params, prefix + "attn_out_norm", "scale")),
                gate_up=_f32(ffn_in * gate_up),
                down=_f32(_p(params, prefix + "ffn/~/down", "w")),
                ffn_out_scale=_f32(_p(params, prefix + "ffn_out_norm", "scale")),
            )
        )
    final = _p(params, "final_norm", "scale")[:, None]
    return ServingWeights(
        post_rows=_f32(post_rows),
        author_rows=_f32(author_rows),
        surface_rows=_f32(surface_rows),
        age_rows=_f32(_p(params, "", "age_table")) if cfg.age_buckets else None,
        content=fold_content(params, cfg),
        affinity_rows=_f32(_p(params, "", "affinity_table")) if cfg.affinity_buckets else None,
        layers=tuple(layers),
        unembed=_f32(final * _p(params, "unembed", "w")),
        unembed_bias=_f32(_p(params, "unembed", "b")),
    )


def _f32(x: np.ndarray) -> jax.Array:
    return jnp.asarray(np.asarray(x, np.float32))


def fold_prefix_weights(params: model.Params, cfg: PhoenixConfig) -> PrefixWeights:
    """Per-checkpoint preparation of the prefix half (float64 on the host, stored as float32)."""
    d, h, k = cfg.emb_size, cfg.num_hashes, cfg.key_size
    w_hist = _p(params, "history_proj", "w")  # rows: [post x H, author x H, action, surface] blocks of D
    surface_rows = _p(params, "", "surface_table") @ w_hist[(2 * h + 1) * d :]
    surface_rows[0] = 0.0
    layers = []
    for i in range(cfg.num_layers):
        prefix = f"layer_{i}/~/"
        attn_in = _p(params, prefix + "attn_in_norm", "scale")[:, None]
        ffn_in = _p(params, prefix + "ffn_in_norm", "scale")[:, None]
        layers.append(
            PrefixLayerWeights(
                query=_f32(attn_in * _p(params, prefix + "attention/~/query", "w") * k**-0.5),
                key=_f32(attn_in * _p(params, prefix + "attention/~/key", "w")),
                value=_f32(attn_in * _p(params, prefix + "attention/~/value", "w")),
                out=_f32(_p(params, prefix + "attention/~/out", "w")),
                attn_out_scale=_f32(_p(params, prefix + "attn_out_norm", "scale")),
                gate=_f32(ffn_in * _p(params, prefix + "ffn/~/gate", "w")),
                up=_f32(ffn_in * _p(params, prefix + "ffn/~/up", "w")),
                down=_f32(_p(params, prefix + "ffn/~/down", "w")),
                ffn_out_scale=_f32(_p(params, prefix + "ffn_out_norm", "scale")),
            )
        )
    angles = np.arange(cfg.history_len + 1)[:, None] * rotary_frequencies(k)
    return PrefixWeights(
        user_table=jnp.asarray(params[_NET]["user_table"], jnp.float32),
        user_proj=_f32(_p(params, "user_proj", "w")),
        post_table=jnp.asarray(params[_NET]["post_table"], jnp.float32),
        author_table=jnp.asarray(params[_NET]["author_table"], jnp.float32),
        post_proj=_f32(w_hist[: h * d]),
        author_proj=_f32(w_hist[h * d : 2 * h * d]),
        action_proj=_f32(_p(params, "action_proj", "w") @ w_hist[2 * h * d : (2 * h + 1) * d]),
        surface_rows=_f32(surface_rows),
        content=fold_content(params, cfg),
        layers=tuple(layers[:-1]),
        last=layers[-1],
        user_tower=_f32(_p(params, "final_norm", "scale")[:, None] * _p(params, "user_retrieval_proj", "w")),
        rotary_cos=_f32(np.cos(angles)),
        rotary_sin=_f32(np.sin(angles)),
    )


def _rows(table: jax.Array, ids: jax.Array) -> jax.Array:
    """[T, H] ids -> [T, H D] concatenated rows, zero for padding id 0 (as the model's lookup)."""
    return (table[ids] * (ids > 0)[..., None]).reshape(ids.shape[0], -1)


def _rotate(x: jax.Array, cos: jax.Array, signed_sin: jax.Array) -> jax.Array:
    """Rotate-half rotary encoding of x [T, heads, K]: with halves (x1, x2), (x1 cos - x2 sin, x2 cos + x1 sin).

    cos [T, 1, 1, K/2] and signed_sin [T, 1, 2, K/2] (-sin then +sin) per token. Written as x * cos plus the
    half-swapped x * signed_sin (a reverse over an axis of 2), which XLA fuses into one cheap elementwise loop;
    a concatenate of the two halves compiles to a much slower gather-like loop on CPU.
    """
    t, heads, k = x.shape
    halves = x.reshape(t, heads, 2, k // 2)
    return (halves * cos + halves[:, :, ::-1] * signed_sin).reshape(t, heads, k)


def prefix_keys_values(
    weights: PrefixWeights, cfg: PhoenixConfig, user_hashes: jax.Array, history: History
) -> FoldedPrefix:
    """One request's user [1, H] + history ([1, ...] arrays of any bucket length <= S) -> `FoldedPrefix` over
    the full S+1 slots: `model.encode_prefix`'s keys and values up to float32 rounding, padded and transposed.
    The history's content arrays are read only by a config with content."""
    folded, _ = _prefix_pass(weights, cfg, False, user_hashes, history)
    return folded


def prefix_and_user(
    weights: PrefixWeights, cfg: PhoenixConfig, user_hashes: jax.Array, history: History
) -> tuple[FoldedPrefix, jax.Array]:
    """`prefix_keys_values` and, from the same pass, the user tower's embedding [R] (the reference being
    `model.user_embedding_from_prefix` over `model.encode_prefix`): the prefix is encoded once per request
    for both retrieval and ranking. Costs the last layer's attention and feed-forward over the history more."""
    folded, user = _prefix_pass(weights, cfg, True, user_hashes, history)
    assert user is not None
    return folded, user


def _prefix_pass(
    weights: PrefixWeights, cfg: PhoenixConfig, with_user: bool, user_hashes: jax.Array, history: History
) -> tuple[FoldedPrefix, jax.Array | None]:
    hq, hkv, k = cfg.num_q_heads, cfg.num_kv_heads, cfg.key_size
    groups, cap = hq // hkv, cfg.attn_logit_cap
    mask = jnp.asarray(history.mask).astype(bool)
    actions = history.actions[0]
    any_action = jnp.any(actions > 0, -1, keepdims=True)
    tokens = (
        _rows(weights.post_table, history.post_hashes[0]) @ weights.post_proj
        + _rows(weights.author_table, history.author_hashes[0]) @ weights.author_proj
        + ((2.0 * actions - 1.0) @ weights.action_proj) * any_action
        + weights.surface_rows[history.surfaces[0]]
    )
    if weights.content is not None:
        tokens = tokens + content_tokens(weights.content, history.content[0], history.semantic_ids[0])
    x = jnp.concatenate([_rows(weights.user_table, user_hashes) @ weights.user_proj, tokens])  # [T, D]
    t = x.shape[0]
    positions = model.prefix_positions(mask, cfg.history_len)[0]
    cos = weights.rotary_cos[positions][:, None, None, :]
    sin = weights.rotary_sin[positions][:, None, None, :]
    signed_sin = jnp.concatenate([-sin, sin], 2)
    valid = jnp.concatenate([jnp.ones((1,), bool), mask[0]])
    causal = jnp.arange(t)[:, None] >= jnp.arange(t)[None, :]
    bias = jnp.where(causal & valid[None, :], 0.0, MASKED).astype(jnp.float32)

    def layer_pass(x: jax.Array, layer: PrefixLayerWeights) -> tuple[jax.Array, jax.Array, jax.Array]:
        """[T, D] -> the layer's output [T, D], rotated keys and values [T, Hkv, K]."""
        xn = rms_normalise(x)
        q = _rotate((xn @ layer.query).reshape(t, hq, k), cos, signed_sin).reshape(t, hkv, groups, k)
        key = _rotate((xn @ layer.key).reshape(t, hkv, k), cos, signed_sin)
        value = (xn @ layer.value).reshape(t, hkv, k)
        logits = soft_cap(jnp.einsum("thgk,shk->hgts", q, key), cap) + bias
        attended = jnp.einsum("hgts,shk->thgk", jax.nn.softmax(logits, axis=-1), value).reshape(t, hq * k)
        x = _post_norm_residual(x, attended @ layer.out, layer.attn_out_scale)
        xn = rms_normalise(x)
        ffn = (jax.nn.gelu(xn @ layer.gate) * (xn @ layer.up)) @ layer.down
        return _post_norm_residual(x, ffn, layer.ffn_out_scale), key, value

    keys, values = [], []
    for layer in weights.layers:
        x, key, value = layer_pass(x, layer)
        keys.append(key)
        values.append(value)
    user = None
    if with_user:
        x, key, value = layer_pass(x, weights.last)
        weights_valid = valid.astype(jnp.float32)[:, None]
        pooled = jnp.sum(rms_normalise(x) * weights_valid, 0) / jnp.sum(weights_valid)  # [D]
        user = l2_normalise(pooled @ weights.user_tower)
    else:
        # Scoring alone needs only the last layer's keys and values, straight from its input.
        xn = rms_normalise(x)
        key = _rotate((xn @ weights.last.key).reshape(t, hkv, k), cos, signed_sin)
        value = (xn @ weights.last.value).reshape(t, hkv, k)
    keys.append(key)
    values.append(value)
    pad = 1 + cfg.history_len - t
    stacked_keys = jnp.pad(jnp.stack(keys), ((0, 0), (0, pad), (0, 0), (0, 0)))  # [L, T_full, Hkv, K]
    stacked_values = jnp.pad(jnp.stack(values), ((0, 0), (0, pad), (0, 0), (0, 0)))
    full_valid = jnp.pad(valid, (0, pad))
    folded = FoldedPrefix(
        jnp.transpose(stacked_keys, (0, 2, 3, 1)),
        jnp.transpose(stacked_values, (0, 2, 1, 3)),
        jnp.where(full_valid, 0.0, MASKED).astype(jnp.float32),
    )
    return folded, user


def _post_norm_residual(x: jax.Array, update: jax.Array, scale: jax.Array) -> jax.Array:
    """x plus the RMS-normalised sub-block output (the model's attn_out / ffn_out norms: RMSNorm after too)."""
    return x + rms_normalise(update) * scale


def candidate_logits(
    weights: ServingWeights, cfg: PhoenixConfig, prefix: FoldedPrefix, candidates: Candidates
) -> jax.Array:
    """[N, 19] logits for one request's candidates: hashes [N, H] (hash 0 = padding), all shown on
    `candidates.surfaces` (one scalar id), ages [N] (`phoenix.age`), content [N, E], semantic ids [N, L] and
    affinity [N, cfg.num_affinity_inputs]. As in the model, each input is read only by a config that has it,
    and absent ages or affinity (None) read as bucket 0, unknown.
    """
    post_hashes, author_hashes = candidates.post_hashes, candidates.author_hashes
    _n, h = post_hashes.shape
    hq, hkv, k = cfg.num_q_heads, cfg.num_kv_heads, cfg.key_size
    groups = hq // hkv
    cap = cfg.attn_logit_cap
    x = weights.surface_rows[jnp.clip(candidates.surfaces, 0, NUM_SURFACES - 1)][None, :]
    for i in range(h):
        x = x + weights.post_rows[i][post_hashes[:, i]] + weights.author_rows[i][author_hashes[:, i]]
    if weights.age_rows is not None:
        ages = candidates.ages
        x = x + (weights.age_rows[ages] if ages is not None else weights.age_rows[0][None, :])
    if weights.content is not None:
        x = x + content_tokens(weights.content, candidates.content, candidates.semantic_ids)
    if weights.affinity_rows is not None:
        rows = weights.affinity_rows
        affinity = candidates.affinity
        buckets = affinity if affinity is not None else jnp.zeros((x.shape[0], rows.shape[0]), jnp.int32)
        x = x + jnp.sum(rows[jnp.arange(rows.shape[0]), buckets], -2)  # one row per input: [N, D]
    for layer, keys, values in zip(weights.layers, prefix.keys, prefix.values, strict=True):
        qkv = rms_normalise(x) @ layer.qkv
        heads = []
        for head in range(hq):
            kv = head // groups
            q = qkv[:, head * k : (head + 1) * k]
            k_self = qkv[:, (hq + kv) * k : (hq + kv + 1) * k]
            v_self = qkv[:, (hq + hkv + kv) * k : (hq + hkv + kv + 1) * k]
            to_prefix = soft_cap(q @ keys[kv], cap) + prefix.bias
            to_self = soft_cap(jnp.sum(q * k_self, -1, keepdims=True), cap)
            shift = cap if cap <= FIXED_SHIFT_MAX_CAP else jnp.maximum(jnp.max(to_prefix, -1, keepdims=True), to_self)
            w_prefix = jnp.exp(to_prefix - shift)
            w_self = jnp.exp(to_self - shift)
            total = jnp.sum(w_prefix, -1, keepdims=True) + w_self
            heads.append((w_prefix @ values[kv] + w_self * v_self) / total)
        attended = jnp.concatenate(heads, -1)
        x = _post_norm_residual(x, attended @ layer.out, layer.attn_out_scale)
        gate, up = jnp.split(rms_normalise(x) @ layer.gate_up, 2, axis=-1)
        x = _post_norm_residual(x, (jax.nn.gelu(gate) * up) @ layer.down, layer.ffn_out_scale)
    return rms_normalise(x) @ weights.unembed + weights.unembed_bias
