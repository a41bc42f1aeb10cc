"""Phoenix model configurations.

A `PhoenixConfig` fully determines the parameter shapes and the id hashing, so it is saved inside every
checkpoint and a checkpoint is always loaded with the configuration it was trained with.

`age_buckets` (B) switches the candidate post-age input on (see `phoenix.age` and `phoenix.model`): 0 means
off, the architecture and params of configs from before the field existed, so their checkpoints (whose
saved config lacks the field) load and score unchanged; B >= 2 adds a [B, D] `age_table`.

`content_dim` (E) switches post content on (see `phoenix.content`, `phoenix.semantic_ids` and `phoenix.model`):
0 means off, the published architecture and the params of configs from before the field existed; E > 0
adds a content projection [E, D] and, with `semantic_id_levels` L > 0, L tables [semantic_id_size + 1, D] of
semantic-ID rows (row 0 = no content). `content_encoder` names the recipe the content vectors come from
(`phoenix.content.ENCODER_ID`), so serving can refuse vectors of another recipe. `affinity_buckets` (A >= 2)
adds the candidate's content affinity to the history (`phoenix.affinity`): a [2, A, D] `affinity_table`.
`content_center` ([E] floats, fitted by training on its posts; empty = none) is what the affinity cosines
subtract from every content vector first (`phoenix.affinity`); it changes inputs, not parameter shapes.
`served_affinity` adds a third affinity input, the candidate's content-weighted engagement rate over the
posts served to the user (`phoenix.affinity`), so the table is [3, A, D]; False (configs from before it
existed) keeps [2, A, D]. `affinity_edges` are the inputs' bin edges, fitted by training (quantiles of the
training examples' values); empty means equal-width bins over [-1, 1], as before they existed.
"""

from dataclasses import asdict, dataclass, fields
from typing import Any, Final


@dataclass(frozen=True)
class PhoenixConfig:
    name: str
    emb_size: int  # D: width of every token and of each hashed embedding row
    num_layers: int
    num_q_heads: int
    num_kv_heads: int  # grouped-query attention: num_q_heads must be a multiple of num_kv_heads
    key_size: int
    widening_factor: float  # feed-forward width = widening_factor * D, scaled by 2/3 for the gate, rounded to 8
    history_len: int  # S: the most recent S history entries are kept
    num_hashes: int = 2  # hash functions per entity (user, post, author)
    user_vocab: int = 1 << 14  # buckets per table, bucket 0 = padding
    post_vocab: int = 1 << 16
    author_vocab: int = 1 << 14
    retrieval_dim: int = 64  # R: two-tower embedding width
    hash_seed: int = 0
    attn_logit_cap: float = 30.0  # grok-style soft cap: cap * tanh(logits / cap)
    age_buckets: int = 0  # candidate post-age buckets (phoenix.age); 0 = no age input
    content_dim: int = 0  # E: width of a post's content vector; 0 = no content input
    semantic_id_levels: int = 0  # L: residual-quantization levels of the content vector; 0 = none
    semantic_id_size: int = 256  # K: codes per level
    content_encoder: str = ""  # the recipe of the content vectors (phoenix.content.ENCODER_ID)
    affinity_buckets: int = 0  # candidate-history content cosines (phoenix.affinity); 0 = none
    content_center: tuple[float, ...] = ()  # [E] mean content vector the affinity cosines centre on; () = none
    served_affinity: bool = False  # affinity input 3: engagement rate over served posts like the candidate
    affinity_edges: tuple[tuple[float, ...], ...] = ()  # [N][A - 2] fitted bin edges per input; () = equal width

    def __post_init__(self) -> None:
        # A config read back from JSON has a list here; a tuple keeps the config hashable (compile caches).
        object.__setattr__(self, "content_center", tuple(float(x) for x in self.content_center))
        object.__setattr__(self, "affinity_edges", tuple(tuple(float(x) for x in row) for row in self.affinity_edges))
        if self.content_center and len(self.content_center) != self.content_dim:
            raise ValueError(f"content_center has {len(self.content_center)} values, content_dim is {self.content_dim}")
        if self.num_q_heads % self.num_kv_heads:
            raise ValueError("num_q_heads must be a multiple of num_kv_heads")
        if min(self.user_vocab, self.post_vocab, self.author_vocab) < 2:
            raise ValueError("every vocabulary needs padding bucket 0 plus at least one real bucket")
        if self.key_size % 2:
            raise ValueError("rotary embeddings need an even key_size")
        if self.age_buckets == 1 or self.age_buckets < 0:
            raise ValueError("age_buckets must be 0 (off) or at least 2 (unknown plus one age bucket)")
        if self.content_dim < 0 or self.semantic_id_levels < 0 or self.semantic_id_size < 1:
            raise ValueError("content_dim and semantic_id_levels must be >= 0, semantic_id_size >= 1")
        if self.semantic_id_levels and not self.content_dim:
            raise ValueError("semantic IDs quantize the content vector: they need content_dim > 0")
        if self.affinity_buckets and (self.affinity_buckets < 2 or not self.content_dim):
            raise ValueError("affinity_buckets must be 0 or at least 2, and needs content_dim > 0")
        if self.served_affinity and not self.affinity_buckets:
            raise ValueError("served_affinity is an affinity input: it needs affinity_buckets")
        if self.affinity_edges and (
            len(self.affinity_edges) != self.num_affinity_inputs
            or any(len(row) != self.affinity_buckets - 2 or list(row) != sorted(row) for row in self.affinity_edges)
        ):
            raise ValueError("affinity_edges needs one ascending row of affinity_buckets - 2 edges per input")

    @property
    def has_content(self) -> bool:
        return self.content_dim > 0

    @property
    def num_affinity_inputs(self) -> int:
        """Rows of the affinity table per bucket (`phoenix.affinity`): 0 without affinity."""
        if not self.affinity_buckets:
            return 0
        return 3 if self.served_affinity else 2

    @property
    def ffn_size(self) -> int:
        size = int(self.widening_factor * self.emb_size) * 2 // 3
        return size + (-size) % 8

    @property
    def candidate_position(self) -> int:
        """The rotary position shared by every candidate: right after the last history slot."""
        return self.history_len + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PhoenixConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown PhoenixConfig fields: {sorted(unknown)}")
        return cls(**d)


DEMO: Final = PhoenixConfig(
    name="demo",
    emb_size=128,
    num_layers=2,
    num_q_heads=2,
    num_kv_heads=2,
    key_size=64,
    widening_factor=2.0,
    history_len=128,
    age_buckets=16,
)

LARGE: Final = PhoenixConfig(
    name="large",
    emb_size=256,
    num_layers=4,
    num_q_heads=4,
    num_kv_heads=2,
    key_size=64,
    widening_factor=4.0,
    history_len=256,
    user_vocab=1 << 16,
    post_vocab=1 << 18,
    author_vocab=1 << 16,
    retrieval_dim=128,
    age_buckets=16,
)

CONFIGS: Final[dict[str, PhoenixConfig]] = {cfg.name: cfg for cfg in (DEMO, LARGE)}
