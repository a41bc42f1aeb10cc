"""Seeded, process-stable hashing of user, post and author ids into embedding buckets.

Every entity is looked up with `cfg.num_hashes` independent hash functions so that two ids colliding in one
bucket almost never collide in all of them. Hash function k for entity kind `kind` is

    salt(kind, k) = splitmix64(hash_seed * 0x9E3779B97F4A7C15 + KIND_TAG[kind] * 0x100 + k + 1)
    bucket        = 1 + splitmix64(uint64(id) XOR salt(kind, k)) mod (vocab - 1)

with `splitmix64` the finaliser of Steele et al.'s SplitMix64 generator (all arithmetic modulo 2**64) and
vocab the kind's table size from the config. Bucket 0 is reserved for padding: ids that are 0 or negative
mean "absent" and map to 0 for every hash function. Only integer arithmetic on explicit constants is used
(never Python's randomised `hash()`), so the buckets are identical in every process, on every machine, for
a given `hash_seed`; changing the seed, the vocabulary sizes or the constants above invalidates every
trained checkpoint.
"""

from typing import Final, Literal

import numpy as np

from phoenix.config import PhoenixConfig

EntityKind = Literal["user", "post", "author"]

KIND_TAG: Final[dict[str, int]] = {"user": 1, "post": 2, "author": 3}
_MASK64: Final = (1 << 64) - 1
_GOLDEN: Final = 0x9E3779B97F4A7C15


def _splitmix64_int(x: int) -> int:
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised SplitMix64 finaliser on uint64 arrays (numpy wraps array arithmetic modulo 2**64)."""
    x = x + np.uint64(_GOLDEN)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _salt(seed: int, kind: str, k: int) -> int:
    return _splitmix64_int((seed * _GOLDEN + KIND_TAG[kind] * 0x100 + k + 1) & _MASK64)


def vocab_size(kind: EntityKind, cfg: PhoenixConfig) -> int:
    return {"user": cfg.user_vocab, "post": cfg.post_vocab, "author": cfg.author_vocab}[kind]


def hash_ids(ids: np.ndarray, kind: EntityKind, cfg: PhoenixConfig) -> np.ndarray:
    """Buckets of shape ids.shape + (num_hashes,), int32 in [1, vocab); ids <= 0 give bucket 0 (padding)."""
    ids = np.asarray(ids, dtype=np.int64)
    vocab = vocab_size(kind, cfg)
    present = ids > 0
    keys = np.where(present, ids, 0).astype(np.uint64)
    out = np.empty((*ids.shape, cfg.num_hashes), dtype=np.int32)
    for k in range(cfg.num_hashes):
        mixed = _splitmix64(keys ^ np.uint64(_salt(cfg.hash_seed, kind, k)))
        bucket = np.uint64(1) + mixed % np.uint64(vocab - 1)
        out[..., k] = np.where(present, bucket, 0).astype(np.int32)
    return out
