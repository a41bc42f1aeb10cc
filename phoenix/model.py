"""The Phoenix ranking transformer and its two retrieval towers, in JAX/Haiku.

Token sequence per request: [user (1), history (S), candidates (C)].
- User token: the user's `num_hashes` hashed embeddings, concatenated and projected to D.
- History token: projection of [post embeddings, author embeddings, action embedding, surface embedding];
  the action embedding projects the 19-way multi-hot mapped to +1/-1 and is zero for padding.
- Candidate token: projection of [post embeddings, author embeddings, surface embedding], plus, when the
  config has `age_buckets` B > 0, the row of a [B, D] `age_table` for the candidate's post-age bucket
  (`phoenix.age`; bucket 0 = unknown). The row is added after the projection so the token stays a sum of
  gathered rows (the serving code folds the projection into the tables and adds this row as is). The table
  starts at zero, so an untrained model with ages scores exactly like one without them (the other params
  are drawn from the same per-name streams), and it is learned from there; row 0 is learned like the
  others, since in a log with some unknown creation times "unknown" is a population of its own (in a log
  with none it gets no gradient and stays zero, i.e. "no age shift"). The age is the candidate's own input,
  so candidate isolation is untouched; history tokens and the retrieval towers have no age (the retrieval
  corpus is embedded once per post, not per request).
- Content (config `content_dim` E > 0; off gives the published architecture): every history and candidate
  post also gets a content token, added after its projection: `content_proj` of the post's content vector
  [E] (`phoenix.content`) plus, per semantic-ID level l (`semantic_id_levels` L), row id_l of the table
  `semantic_id_l` [K+1, D] (`phoenix.semantic_ids`: id = code + 1, 0 = content unknown, a zero row). History
  and candidates share these weights, so what the user engaged with and what is shown are read alike. They
  start random (N(0, 1) projection weights for the unit-norm vector, N(0, 1/L) rows), so the content token
  has the scale of the other tokens' coordinates and attention can use it from the first step (zero starts
  learned nothing in 150 steps of a cold-start test); with them zeroed the model is the published one. A
  fresh post's content token is meaningful the moment it exists, where its hashed id row is untrained.
  With `affinity_buckets` A > 0, the candidate token also gets one row per content-affinity input
  (`phoenix.affinity`: cosines of the candidate's content to the history's, and with `served_affinity` its
  engagement rate over similar served posts) of a [cfg.num_affinity_inputs, A, D] table that starts at
  zero, like the age table.
Grok-style layers: RMSNorm before and after each sub-block, rotary positions, grouped-query attention with
a tanh soft cap and softmax in float32, gated GELU feed-forward. A final RMSNorm and a linear head turn
each candidate position into 19 independent logits (sigmoid gives the action probabilities).

Attention mask: user+history is causal (over real entries only); a candidate attends to user+history and
to itself, never to another candidate. Positions: user 0, the i-th newest real history entry S+1-i, every
candidate S+1. Candidates therefore share a position and see nothing of each other, so a candidate's
output depends only on (user, history, candidate): it is invariant to the other candidates, their order,
their number and padding.

The forward: that isolation lets the sequence be split exactly (up to float32 rounding): `encode_prefix`
runs user+history once and keeps each layer's keys/values, and `score_from_prefix` runs each candidate as a
single query attending to [prefix keys/values ; its own key/value]. This is the one forward of training,
evaluation and serving (`forward` over a `RankingBatch`; the worker runs `phoenix.folded`, the same
function over pre-multiplied weights, proven equal by its tests). `full_sequence_logits` runs the whole
[user, history, candidates] sequence under the attention mask above: it is the oracle the tests check the
forward's candidate isolation and equality against, and nothing else calls it.

Retrieval shares the embeddings and the transformer: the user tower mean-pools the final hidden states of
the user+history positions (which candidates never influence) and projects them to R; the candidate tower
is a two-layer SiLU MLP over [post embeddings, author embeddings] (with content: plus the raw content vector
and the content token), so a post is retrievable by topic as soon as it is ingested. Both are L2-normalised.

Initialisation: hashed rows are N(0, 1) and every projection is fan-in scaled, so tokens start with unit
scale and distinct ids give distinct logits of unit spread (an untrained ranker is varied, not constant).
"""

import functools
import zlib
from collections.abc import Callable, Mapping
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from phoenix.batch import Candidates, History, RankingBatch
from phoenix.config import PhoenixConfig
from topics.actions import NUM_PHOENIX_ACTIONS, NUM_SURFACES

Params = Mapping[str, Mapping[str, jax.Array]]

MASKED = -1e30  # a masked key's attention logit: finite, so a fully masked row cannot give NaN (none is)
ROPE_BASE = 10_000.0  # rotary wavelength base
RMS_EPSILON = 1e-6


class Prefix(NamedTuple):
    """User+history computed once per request; reused for any number of candidates."""

    keys: jax.Array  # [L, B, T, Hkv, K] rotary-encoded keys of every layer
    values: jax.Array  # [L, B, T, Hkv, K]
    valid: jax.Array  # [B, T] bool: user token and real history entries
    hidden: jax.Array  # [B, T, D] final-normed hidden states (input of the user tower)


def _dense_init() -> hk.initializers.Initializer:
    return hk.initializers.VarianceScaling(1.0, "fan_in", "normal")


def _dense(size: int, name: str, with_bias: bool = False) -> hk.Linear:
    return hk.Linear(size, with_bias=with_bias, w_init=_dense_init(), name=name)


def history_positions(history_mask: jax.Array, history_len: int) -> jax.Array:
    """Rotary positions of history slots: the newest real entry gets S, the one before S-1, ...; padding 0."""
    mask = history_mask.astype(jnp.int32)
    at_or_after = jnp.flip(jnp.cumsum(jnp.flip(mask, -1), -1), -1)
    return jnp.where(history_mask, history_len + 1 - at_or_after, 0)


def prefix_positions(history_mask: jax.Array, history_len: int) -> jax.Array:
    user = jnp.zeros((*history_mask.shape[:-1], 1), jnp.int32)
    return jnp.concatenate([user, history_positions(history_mask, history_len)], -1)


def attention_mask(history_mask: jax.Array, num_candidates: int) -> jax.Array:
    """[B, T, T] bool, T = 1 + S + C; entry [i, j] says whether position i may attend to position j."""
    b, s = history_mask.shape
    p = 1 + s
    t = p + num_candidates
    prefix_valid = jnp.concatenate([jnp.ones((b, 1), bool), history_mask.astype(bool)], -1)
    idx = jnp.arange(t)
    is_prefix = idx < p
    causal = idx[:, None] >= idx[None, :]
    key_valid = jnp.concatenate([prefix_valid, jnp.zeros((b, num_candidates), bool)], -1)
    # Prefix queries: causal over valid prefix keys. Candidate queries: every valid prefix key, plus self.
    prefix_rows = (is_prefix[:, None] & causal)[None] & key_valid[:, None, :]
    candidate_rows = (~is_prefix[:, None])[None] & (key_valid[:, None, :] | jnp.eye(t, dtype=bool)[None])
    return prefix_rows | candidate_rows


def rotary_frequencies(key_size: int) -> np.ndarray:
    """[K/2] float64 angular frequencies of the rotary encoding (angle = position x frequency)."""
    half = key_size // 2
    return 1.0 / ROPE_BASE ** (np.arange(half) / half)


def _rotary(x: jax.Array, positions: jax.Array) -> jax.Array:
    """Rotate-half rotary encoding; x [..., T, heads, K], positions [..., T]."""
    half = x.shape[-1] // 2
    freqs = jnp.asarray(rotary_frequencies(x.shape[-1]), jnp.float32)
    angles = positions.astype(jnp.float32)[..., None] * freqs
    sin = jnp.sin(angles)[..., None, :]
    cos = jnp.cos(angles)[..., None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def soft_cap(logits: jax.Array, cap: float) -> jax.Array:
    return cap * jnp.tanh(logits / cap)


def rms_normalise(x: jax.Array) -> jax.Array:
    """RMSNorm without its scale (the folded forward multiplies the scale into the next weights)."""
    return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + RMS_EPSILON)


def l2_normalise(x: jax.Array) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, -1, keepdims=True), 1e-12))


class RMSNorm(hk.Module):
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = hk.get_parameter("scale", [x.shape[-1]], jnp.float32, init=jnp.ones)
        return rms_normalise(x.astype(jnp.float32)) * scale


class Attention(hk.Module):
    """Grouped-query attention projections; the attention itself lives in the callers."""

    def __init__(self, cfg: PhoenixConfig, name: str | None = None) -> None:
        super().__init__(name=name)
        self.cfg = cfg
        self.query = _dense(cfg.num_q_heads * cfg.key_size, "query")
        self.key = _dense(cfg.num_kv_heads * cfg.key_size, "key")
        self.value = _dense(cfg.num_kv_heads * cfg.key_size, "value")
        self.out = _dense(cfg.emb_size, "out")

    def project(self, x: jax.Array, positions: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """q [..., T, Hkv, G, K] (scaled by 1/sqrt(K)), k and v [..., T, Hkv, K]; q and k rotary-encoded."""
        c = self.cfg
        lead = x.shape[:-1]
        q = self.query(x).reshape(*lead, c.num_q_heads, c.key_size)
        k = self.key(x).reshape(*lead, c.num_kv_heads, c.key_size)
        v = self.value(x).reshape(*lead, c.num_kv_heads, c.key_size)
        q = _rotary(q, positions) * (c.key_size**-0.5)
        k = _rotary(k, positions)
        groups = c.num_q_heads // c.num_kv_heads
        return q.reshape(*lead, c.num_kv_heads, groups, c.key_size), k, v

    def merge(self, o: jax.Array) -> jax.Array:
        return self.out(o.reshape(*o.shape[:-3], -1))


class FeedForward(hk.Module):
    def __init__(self, cfg: PhoenixConfig, name: str | None = None) -> None:
        super().__init__(name=name)
        self.gate = _dense(cfg.ffn_size, "gate")
        self.up = _dense(cfg.ffn_size, "up")
        self.down = _dense(cfg.emb_size, "down")

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down(jax.nn.gelu(self.gate(x)) * self.up(x))


class Layer(hk.Module):
    def __init__(self, cfg: PhoenixConfig, name: str | None = None) -> None:
        super().__init__(name=name)
        self.cfg = cfg
        self.attn_in = RMSNorm(name="attn_in_norm")
        self.attn_out = RMSNorm(name="attn_out_norm")
        self.ffn_in = RMSNorm(name="ffn_in_norm")
        self.ffn_out = RMSNorm(name="ffn_out_norm")
        self.attention = Attention(cfg, name="attention")
        self.ffn = FeedForward(cfg, name="ffn")

    def _finish(self, x: jax.Array, attended: jax.Array) -> jax.Array:
        x = x + self.attn_out(self.attention.merge(attended))
        return x + self.ffn_out(self.ffn(self.ffn_in(x)))

    def __call__(self, x: jax.Array, positions: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Full self-attention under `mask` [B, T, T]; also returns this layer's keys and values."""
        q, k, v = self.attention.project(self.attn_in(x), positions)
        logits = soft_cap(jnp.einsum("bthgk,bshk->bhgts", q, k), self.cfg.attn_logit_cap)
        logits = jnp.where(mask[:, None, None], logits, MASKED)
        weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
        attended = jnp.einsum("bhgts,bshk->bthgk", weights, v)
        return self._finish(x, attended), k, v

    def against_prefix(
        self, x: jax.Array, prefix_keys: jax.Array, prefix_values: jax.Array, prefix_valid: jax.Array
    ) -> jax.Array:
        """Candidates x [B, N, D], each a single query over [prefix keys/values ; its own key/value]."""
        positions = jnp.full(x.shape[:-1], self.cfg.candidate_position, jnp.int32)
        q, k, v = self.attention.project(self.attn_in(x), positions)
        cap = self.cfg.attn_logit_cap
        to_prefix = soft_cap(jnp.einsum("bnhgk,bthk->bnhgt", q, prefix_keys), cap)
        to_prefix = jnp.where(prefix_valid[:, None, None, None, :], to_prefix, MASKED)
        to_self = soft_cap(jnp.einsum("bnhgk,bnhk->bnhg", q, k), cap)[..., None]
        top = jnp.maximum(jnp.max(to_prefix, -1, keepdims=True), to_self)
        w_prefix = jnp.exp(to_prefix - top)
        w_self = jnp.exp(to_self - top)
        total = jnp.sum(w_prefix, -1, keepdims=True) + w_self
        attended = jnp.einsum("bnhgt,bthk->bnhgk", w_prefix, prefix_values) + w_self * v[:, :, :, None, :]
        return self._finish(x, attended / total)


class PhoenixNet(hk.Module):
    def __init__(self, cfg: PhoenixConfig, name: str | None = "phoenix") -> None:
        super().__init__(name=name)
        self.cfg = cfg
        d = cfg.emb_size
        self.user_proj = _dense(d, "user_proj")
        self.history_proj = _dense(d, "history_proj")
        self.candidate_proj = _dense(d, "candidate_proj")
        self.action_proj = _dense(d, "action_proj")
        self.layers = [Layer(cfg, name=f"layer_{i}") for i in range(cfg.num_layers)]
        self.final_norm = RMSNorm(name="final_norm")
        self.unembed = hk.Linear(NUM_PHOENIX_ACTIONS, w_init=_dense_init(), name="unembed")
        self.user_retrieval_proj = _dense(cfg.retrieval_dim, "user_retrieval_proj")
        self.candidate_mlp_hidden = _dense(d, "candidate_mlp_hidden", with_bias=True)
        self.candidate_mlp_out = _dense(cfg.retrieval_dim, "candidate_mlp_out", with_bias=True)
        if cfg.has_content:
            self.content_proj = hk.Linear(
                d, with_bias=False, w_init=hk.initializers.RandomNormal(1.0), name="content_proj"
            )

    def _lookup(self, table: str, vocab: int, ids: jax.Array) -> jax.Array:
        """Rows of a table, padding id 0 zeroed, last axis (hashes) concatenated: [..., H] -> [..., H*D]."""
        weights = hk.get_parameter(
            table, [vocab, self.cfg.emb_size], jnp.float32, init=hk.initializers.RandomNormal(1.0)
        )
        rows = jnp.take(weights, ids, axis=0) * (ids > 0)[..., None]
        return rows.reshape(*ids.shape[:-1], -1)

    def _posts_and_authors(self, post_hashes: jax.Array, author_hashes: jax.Array) -> jax.Array:
        c = self.cfg
        posts = self._lookup("post_table", c.post_vocab, post_hashes)
        authors = self._lookup("author_table", c.author_vocab, author_hashes)
        return jnp.concatenate([posts, authors], -1)

    def content_tokens(self, content: jax.Array, semantic_ids: jax.Array | None) -> jax.Array:
        """[..., E] content vectors and [..., L] semantic ids (or None) -> [..., D] content tokens."""
        c = self.cfg
        tokens = self.content_proj(content.astype(jnp.float32))
        for level in range(c.semantic_id_levels):
            table = hk.get_parameter(
                f"semantic_id_{level}_table",
                [c.semantic_id_size + 1, c.emb_size],
                jnp.float32,
                init=hk.initializers.RandomNormal(c.semantic_id_levels**-0.5),
            )
            ids = semantic_ids[..., level]
            tokens = tokens + jnp.take(table, ids, axis=0) * (ids > 0)[..., None]
        return tokens

    def _with_content(self, tokens: jax.Array, content: jax.Array | None, semantic_ids: jax.Array | None) -> jax.Array:
        if not self.cfg.has_content:
            return tokens
        if content is None:
            raise ValueError("a config with content needs the posts' content vectors")
        return tokens + self.content_tokens(content, semantic_ids)

    def _surfaces(self, surfaces: jax.Array) -> jax.Array:
        return self._lookup("surface_table", NUM_SURFACES, surfaces[..., None])

    def user_tokens(self, user_hashes: jax.Array) -> jax.Array:
        users = self._lookup("user_table", self.cfg.user_vocab, user_hashes)
        return self.user_proj(users)[:, None, :]

    def history_tokens(self, history: History) -> jax.Array:
        actions = jnp.asarray(history.actions)
        any_action = jnp.any(actions > 0, -1, keepdims=True)
        action_emb = self.action_proj(2.0 * actions.astype(jnp.float32) - 1.0) * any_action
        parts = [
            self._posts_and_authors(history.post_hashes, history.author_hashes),
            action_emb,
            self._surfaces(history.surfaces),
        ]
        return self._with_content(
            self.history_proj(jnp.concatenate(parts, -1)), history.content, history.semantic_ids
        )

    def candidate_tokens(self, candidates: Candidates) -> jax.Array:
        """[B, C, D] candidate tokens. Ages are used only by a config with ages, content and semantic ids only
        by one with content, affinity buckets only by one with affinity; absent ages or affinity (None) read
        as bucket 0, unknown."""
        surfaces = candidates.surfaces
        parts = [self._posts_and_authors(candidates.post_hashes, candidates.author_hashes), self._surfaces(surfaces)]
        tokens = self._with_content(
            self.candidate_proj(jnp.concatenate(parts, -1)), candidates.content, candidates.semantic_ids
        )
        c = self.cfg
        if c.affinity_buckets:
            table = hk.get_parameter(
                "affinity_table", [c.num_affinity_inputs, c.affinity_buckets, c.emb_size], jnp.float32, init=jnp.zeros
            )
            affinity = candidates.affinity
            if affinity is None:
                affinity = jnp.zeros((*surfaces.shape, c.num_affinity_inputs), jnp.int32)
            tokens = tokens + jnp.sum(table[jnp.arange(c.num_affinity_inputs), affinity], -2)
        if not self.cfg.age_buckets:
            return tokens
        table = hk.get_parameter("age_table", [self.cfg.age_buckets, self.cfg.emb_size], jnp.float32, init=jnp.zeros)
        ages = candidates.ages
        if ages is None:
            ages = jnp.zeros(surfaces.shape, jnp.int32)
        return tokens + jnp.take(table, ages, axis=0)

    def prefix(self, user_hashes: jax.Array, history: History) -> Prefix:
        history_mask = jnp.asarray(history.mask).astype(bool)
        x = jnp.concatenate([self.user_tokens(user_hashes), self.history_tokens(history)], 1)  # [B, T, D]
        positions = prefix_positions(history_mask, self.cfg.history_len)
        mask = attention_mask(history_mask, 0)
        keys, values = [], []
        for layer in self.layers:
            x, k, v = layer(x, positions, mask)
            keys.append(k)
            values.append(v)
        valid = jnp.concatenate([jnp.ones_like(history_mask[:, :1]), history_mask], -1)
        return Prefix(jnp.stack(keys), jnp.stack(values), valid, self.final_norm(x))

    def score_from_prefix(self, prefix: Prefix, candidates: Candidates) -> jax.Array:
        """[B, N, 19] logits of candidates ([B, N, ...]) against a prefix."""
        x = self.candidate_tokens(candidates)  # [B, N, D]
        for i, layer in enumerate(self.layers):
            x = layer.against_prefix(x, prefix.keys[i], prefix.values[i], prefix.valid)
        return self.unembed(self.final_norm(x))

    def full_sequence(self, batch: RankingBatch) -> jax.Array:
        """The test oracle (module docstring): the whole sequence through every layer under the mask."""
        history_mask = jnp.asarray(batch.history.mask).astype(bool)
        num_candidates = batch.candidate_mask.shape[1]
        x = jnp.concatenate(
            [
                self.user_tokens(batch.user_hashes),
                self.history_tokens(batch.history),
                self.candidate_tokens(batch.candidates()),
            ],
            1,
        )  # [B, 1 + S + C, D]
        candidate_positions = jnp.full((history_mask.shape[0], num_candidates), self.cfg.candidate_position, jnp.int32)
        positions = jnp.concatenate([prefix_positions(history_mask, self.cfg.history_len), candidate_positions], -1)
        mask = attention_mask(history_mask, num_candidates)
        for layer in self.layers:
            x, _, _ = layer(x, positions, mask)
        return self.unembed(self.final_norm(x[:, -num_candidates:]))

    def user_embedding_from_prefix(self, prefix: Prefix) -> jax.Array:
        weights = prefix.valid.astype(jnp.float32)[..., None]
        pooled = jnp.sum(prefix.hidden * weights, 1) / jnp.sum(weights, 1)
        return l2_normalise(self.user_retrieval_proj(pooled))

    def candidate_embedding(
        self,
        post_hashes: jax.Array,
        author_hashes: jax.Array,
        content: jax.Array | None = None,
        semantic_ids: jax.Array | None = None,
    ) -> jax.Array:
        inputs = self._posts_and_authors(post_hashes, author_hashes)
        if self.cfg.has_content:
            if content is None:
                raise ValueError("a config with content needs the posts' content vectors")
            content = content.astype(jnp.float32)
            inputs = jnp.concatenate([inputs, content, self.content_tokens(content, semantic_ids)], -1)
        hidden = jax.nn.silu(self.candidate_mlp_hidden(inputs))
        return l2_normalise(self.candidate_mlp_out(hidden))


class EntryPoints(NamedTuple):
    """The pure functions of one config, by name; each takes the params first (`PhoenixNet`'s methods)."""

    encode_prefix: Callable[..., Prefix]
    score_from_prefix: Callable[..., jax.Array]
    user_embedding_from_prefix: Callable[..., jax.Array]
    candidate_embedding: Callable[..., jax.Array]
    full_sequence_logits: Callable[..., jax.Array]  # the test oracle


@functools.cache
def _transformed(cfg: PhoenixConfig) -> hk.MultiTransformed:
    def build() -> tuple[Callable[[RankingBatch], None], EntryPoints]:
        net = PhoenixNet(cfg)

        def init(batch: RankingBatch) -> None:
            prefix = net.prefix(batch.user_hashes, batch.history)
            net.score_from_prefix(prefix, batch.candidates())
            net.user_embedding_from_prefix(prefix)
            net.candidate_embedding(
                batch.candidate_post_hashes,
                batch.candidate_author_hashes,
                batch.candidate_content,
                batch.candidate_semantic_ids,
            )

        return init, EntryPoints(
            encode_prefix=net.prefix,
            score_from_prefix=net.score_from_prefix,
            user_embedding_from_prefix=net.user_embedding_from_prefix,
            candidate_embedding=net.candidate_embedding,
            full_sequence_logits=net.full_sequence,
        )

    return hk.without_apply_rng(hk.multi_transform(build))


def _entry_points(cfg: PhoenixConfig) -> EntryPoints:
    return _transformed(cfg).apply  # multi_transform keeps the tree `build` returned: an EntryPoints


def _dummy_batch(cfg: PhoenixConfig) -> RankingBatch:
    h, e, levels = cfg.num_hashes, cfg.content_dim, cfg.semantic_id_levels
    content = np.ones((1, 1, e), np.float32) if cfg.has_content else None
    semantic_ids = np.ones((1, 1, levels), np.int32) if cfg.has_content else None
    return RankingBatch(
        user_hashes=np.ones((1, h), np.int32),
        history=History(
            post_hashes=np.ones((1, 1, h), np.int32),
            author_hashes=np.ones((1, 1, h), np.int32),
            actions=np.ones((1, 1, NUM_PHOENIX_ACTIONS), np.float32),
            surfaces=np.ones((1, 1), np.int32),
            mask=np.ones((1, 1), bool),
            content=content,
            semantic_ids=semantic_ids,
        ),
        candidate_post_hashes=np.ones((1, 1, h), np.int32),
        candidate_author_hashes=np.ones((1, 1, h), np.int32),
        candidate_surfaces=np.ones((1, 1), np.int32),
        candidate_mask=np.ones((1, 1), bool),
        candidate_ages=np.ones((1, 1), np.int32) if cfg.age_buckets else None,
        candidate_content=content,
        candidate_semantic_ids=semantic_ids,
        candidate_affinity=np.ones((1, 1, cfg.num_affinity_inputs), np.int32) if cfg.affinity_buckets else None,
    )


def _seed_words(rng: jax.Array) -> list[int]:
    key = jax.random.key_data(rng) if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng
    return [int(w) for w in np.asarray(key).ravel()]


def init_params(cfg: PhoenixConfig, rng: jax.Array) -> Params:
    """Fresh params drawn with numpy from the same distributions as the modules' Haiku initialisers.

    Haiku's own init runs ~250 tiny XLA programs (about 20 s of compilation on a 2-core CPU, 7 s when
    jitted), so only the param shapes are traced and each array is drawn from its own seeded numpy stream:
    hashed tables N(0, 1), the age table 0, the semantic-ID tables N(0, 1/L) and the content projection
    N(0, 1) (module docstring), other weights N(0, 1/fan_in), biases 0, norm scales 1.
    """
    shapes = jax.eval_shape(_transformed(cfg).init, rng, _dummy_batch(cfg))
    words = _seed_words(rng)
    params: dict[str, dict[str, jax.Array]] = {}
    for module, leaves in shapes.items():
        for name, leaf in leaves.items():
            stream = np.random.default_rng([*words, zlib.crc32(f"{module}/{name}".encode())])
            if name in ("age_table", "affinity_table"):
                value = np.zeros(leaf.shape, np.float32)
            elif name.startswith("semantic_id_"):
                value = stream.standard_normal(leaf.shape, dtype=np.float32) / np.float32(
                    np.sqrt(cfg.semantic_id_levels)
                )
            elif module.endswith("content_proj") or name.endswith("_table"):
                value = stream.standard_normal(leaf.shape, dtype=np.float32)
            elif name == "w":
                value = stream.standard_normal(leaf.shape, dtype=np.float32) / np.float32(np.sqrt(leaf.shape[0]))
            elif name == "b":
                value = np.zeros(leaf.shape, np.float32)
            elif name == "scale":
                value = np.ones(leaf.shape, np.float32)
            else:
                raise ValueError(f"no initialiser for parameter {module}/{name}")
            params.setdefault(module, {})[name] = jnp.asarray(value)
    return params


def forward(params: Params, cfg: PhoenixConfig, batch: RankingBatch) -> tuple[jax.Array, Prefix]:
    """The forward of training, evaluation and progressive validation: [B, C, 19] logits (padded candidates
    give ignorable values) and the prefix they were scored against (the user tower reads it too)."""
    fns = _entry_points(cfg)
    prefix = fns.encode_prefix(params, batch.user_hashes, batch.history)
    return fns.score_from_prefix(params, prefix, batch.candidates()), prefix


def rank_logits(params: Params, cfg: PhoenixConfig, batch: RankingBatch) -> jax.Array:
    """[B, C, 19] logits of `forward`."""
    return forward(params, cfg, batch)[0]


def full_sequence_logits(params: Params, cfg: PhoenixConfig, batch: RankingBatch) -> jax.Array:
    """[B, C, 19] logits of the full-sequence oracle (module docstring); for tests only."""
    return _entry_points(cfg).full_sequence_logits(params, batch)


def user_embedding(params: Params, cfg: PhoenixConfig, batch: RankingBatch) -> jax.Array:
    """[B, R] L2-normalised user-tower output; candidate fields of the batch are ignored."""
    return user_embedding_from_prefix(params, cfg, encode_prefix(params, cfg, batch.user_hashes, batch.history))


def candidate_embedding(
    params: Params,
    cfg: PhoenixConfig,
    post_hashes: jax.Array,
    author_hashes: jax.Array,
    content: jax.Array | None = None,
    semantic_ids: jax.Array | None = None,
) -> jax.Array:
    """[N, R] L2-normalised candidate-tower output for post/author hashes [N, H] (and, with content, the
    posts' content vectors [N, E] and semantic ids [N, L])."""
    return _entry_points(cfg).candidate_embedding(params, post_hashes, author_hashes, content, semantic_ids)


def encode_prefix(params: Params, cfg: PhoenixConfig, user_hashes: jax.Array, history: History) -> Prefix:
    """User [B, H] + history once: per-layer keys/values for `score_from_prefix` and hidden states for
    retrieval. The history may be shorter than S (bucketed); positions still count back from S."""
    return _entry_points(cfg).encode_prefix(params, user_hashes, history)


def score_from_prefix(params: Params, cfg: PhoenixConfig, prefix: Prefix, candidates: Candidates) -> jax.Array:
    """[B, N, 19] logits for candidates ([B, N, ...]) against a prefix; equals `full_sequence_logits` up to
    rounding."""
    return _entry_points(cfg).score_from_prefix(params, prefix, candidates)


def user_embedding_from_prefix(params: Params, cfg: PhoenixConfig, prefix: Prefix) -> jax.Array:
    return _entry_points(cfg).user_embedding_from_prefix(params, prefix)
