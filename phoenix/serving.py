"""The candidate half of the Phoenix forward, rewritten for CPU inference over pre-folded weights.

`model.score_from_prefix` is the readable reference; this computes the same function (equal up to float32
rounding, checked by the tests) with fewer and larger matrix products, which is what a 2-core CPU is good
at. Once per checkpoint (`fold_weights`):
- the candidate input projection is split per input block, so a candidate token is the sum of gathered,
  already-projected rows of the post/author/surface tables (no [N, 5D] x [5D, D] product per request);
- RMSNorm scales are folded into the weights that follow them; Q, K and V become one matrix, gate and up
  another; since every candidate sits at the same rotary position, the rotation (and 1/sqrt(key_size)) is
  a fixed linear map folded into the query and key weights.
Once per request (`fold_prefix`): each layer's prefix keys are transposed per head, so attention is two
plain 2-D products per query head, [N, K] x [K, T] and [N, T] x [T, K], plus the candidate's own key and
value as one extra softmax term (no candidate-by-candidate attention at all).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from phoenix import model
from phoenix.actions import NUM_SURFACES
from phoenix.config import PhoenixConfig

_NET = "phoenix"


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
    layers: tuple[LayerWeights, ...]
    unembed: jax.Array  # [D, 19], final norm scale folded in
    unembed_bias: jax.Array  # [19]


class FoldedPrefix(NamedTuple):
    keys: jax.Array  # [L, Hkv, K, T] transposed, ready to multiply queries [N, K]
    values: jax.Array  # [L, Hkv, T, K]
    bias: jax.Array  # [T]: 0 for valid prefix positions, large negative for padding


def _p(params: model.Params, module: str, name: str) -> np.ndarray:
    key = _NET if not module else f"{_NET}/~/{module}"
    return np.asarray(params[key][name], np.float64)


def _rotation(cfg: PhoenixConfig) -> np.ndarray:
    """[K, K] matrix R with x @ R == rotary(x) at the candidates' position (rotate-half convention)."""
    half = cfg.key_size // 2
    freqs = 1.0 / (10_000.0 ** (np.arange(half) / half))
    angle = cfg.candidate_position * freqs
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
    surface_rows[0] = 0.0
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
        layers=tuple(layers),
        unembed=_f32(final * _p(params, "unembed", "w")),
        unembed_bias=_f32(_p(params, "unembed", "b")),
    )


def _f32(x: np.ndarray) -> jax.Array:
    return jnp.asarray(np.asarray(x, np.float32))


def fold_prefix(cfg: PhoenixConfig, keys: jax.Array, values: jax.Array, valid: jax.Array) -> FoldedPrefix:
    """Prefix keys/values [L, 1, T, Hkv, K] of one request -> per-head matrices for plain 2-D products."""
    bias = jnp.where(valid[0], 0.0, -1e30).astype(jnp.float32)
    return FoldedPrefix(jnp.transpose(keys[:, 0], (0, 2, 3, 1)), jnp.transpose(values[:, 0], (0, 2, 1, 3)), bias)


def _normalise(x: jax.Array) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + 1e-6)


def candidate_logits(
    weights: ServingWeights,
    cfg: PhoenixConfig,
    prefix: FoldedPrefix,
    post_hashes: jax.Array,
    author_hashes: jax.Array,
    surface: jax.Array,
) -> jax.Array:
    """[N, 19] logits for candidates [N, H] (hash 0 = padding) shown on `surface` (a scalar id)."""
    _n, h = post_hashes.shape
    hq, hkv, k = cfg.num_q_heads, cfg.num_kv_heads, cfg.key_size
    groups = hq // hkv
    cap = cfg.attn_logit_cap
    x = weights.surface_rows[jnp.clip(surface, 0, NUM_SURFACES - 1)][None, :]
    for i in range(h):
        x = x + weights.post_rows[i][post_hashes[:, i]] + weights.author_rows[i][author_hashes[:, i]]
    for layer, keys, values in zip(weights.layers, prefix.keys, prefix.values, strict=True):
        qkv = _normalise(x) @ layer.qkv
        heads = []
        for head in range(hq):
            kv = head // groups
            q = qkv[:, head * k : (head + 1) * k]
            k_self = qkv[:, (hq + kv) * k : (hq + kv + 1) * k]
            v_self = qkv[:, (hq + hkv + kv) * k : (hq + hkv + kv + 1) * k]
            to_prefix = cap * jnp.tanh((q @ keys[kv]) / cap) + prefix.bias
            to_self = cap * jnp.tanh(jnp.sum(q * k_self, -1, keepdims=True) / cap)
            top = jnp.maximum(jnp.max(to_prefix, -1, keepdims=True), to_self)
            w_prefix = jnp.exp(to_prefix - top)
            w_self = jnp.exp(to_self - top)
            total = jnp.sum(w_prefix, -1, keepdims=True) + w_self
            heads.append((w_prefix @ values[kv] + w_self * v_self) / total)
        attended = jnp.concatenate(heads, -1)
        x = x + _normalise(attended @ layer.out) * layer.attn_out_scale
        gate, up = jnp.split(_normalise(x) @ layer.gate_up, 2, axis=-1)
        x = x + _normalise((jax.nn.gelu(gate) * up) @ layer.down) * layer.ffn_out_scale
    return _normalise(x) @ weights.unembed + weights.unembed_bias
