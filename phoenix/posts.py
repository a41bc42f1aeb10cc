"""The posts file beside an engagement log, and the posts' content as model inputs.

    {"post_id": int, "author_id": int, "text": str, "media": "none" | "photo" | "video",
     "created_at_ms": int | null, "repost_of_post_id": int | null}

One JSON object per line (JSONL). `post_id` and `text` are required; `media` defaults to "none",
`author_id`, `created_at_ms` and `repost_of_post_id` are optional (absent or null = unknown / not a repost);
other fields are ignored (the same forward compatibility as the topics). A repost gets its original's
content when the original is in the file, as the worker's ingest does. `created_at_ms` fills a log line's
missing `post_created_at_ms` (the post-age input).
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import orjson

from phoenix import semantic_ids
from phoenix.config import PhoenixConfig
from phoenix.content import MEDIA_KINDS, ContentEncoder, load_encoder
from phoenix.jsonl import is_integer, iter_records, json_object
from phoenix.log import Impression

_ENCODE_BATCH = 4096


class PostsFormatError(ValueError):
    def __init__(self, line_no: int, reason: str) -> None:
        super().__init__(f"posts file line {line_no}: {reason}")


@dataclass(frozen=True, slots=True)
class PostRecord:
    post_id: int
    text: str
    media: str = "none"
    author_id: int | None = None
    created_at_ms: int | None = None
    repost_of_post_id: int | None = None

    def to_json(self) -> dict[str, object]:
        record: dict[str, object] = {
            "post_id": self.post_id,
            "author_id": self.author_id,
            "text": self.text,
            "media": self.media,
            "created_at_ms": self.created_at_ms,
        }
        if self.repost_of_post_id is not None:
            record["repost_of_post_id"] = self.repost_of_post_id
        return record


def _optional_int(record: dict[str, object], key: str, line_no: int, minimum: int) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    if not is_integer(value) or value < minimum:
        raise PostsFormatError(line_no, f"{key!r} must be an integer >= {minimum} or null, got {value!r}")
    return value


def parse_post(line: str | bytes, line_no: int) -> PostRecord:
    record = json_object(line, line_no, PostsFormatError)
    post_id = _optional_int(record, "post_id", line_no, 1)
    if post_id is None:
        raise PostsFormatError(line_no, "missing 'post_id'")
    text = record.get("text")
    if not isinstance(text, str):
        raise PostsFormatError(line_no, f"'text' must be a string, got {text!r}")
    media = record.get("media", "none") or "none"
    if media not in MEDIA_KINDS:
        raise PostsFormatError(line_no, f"'media' must be one of {', '.join(MEDIA_KINDS)}, got {media!r}")
    return PostRecord(
        post_id=post_id,
        text=text,
        media=media,
        author_id=_optional_int(record, "author_id", line_no, 1),
        created_at_ms=_optional_int(record, "created_at_ms", line_no, 0),
        repost_of_post_id=_optional_int(record, "repost_of_post_id", line_no, 1),
    )


def iter_posts(path: str | Path) -> Iterator[PostRecord]:
    return iter_records(path, parse_post)


def write_posts(path: str | Path, posts: Iterable[PostRecord]) -> int:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(target, "wb") as handle:
        for post in posts:
            handle.write(orjson.dumps(post.to_json()) + b"\n")
            count += 1
    return count


@dataclass(frozen=True)
class ContentTable:
    """Content vectors (and semantic ids, once codebooks exist) of known posts, looked up by post id."""

    post_ids: np.ndarray  # [N] int64, sorted, unique
    vectors: np.ndarray  # [N, E] float32
    semantic_ids: np.ndarray | None = None  # [N, L] int32 model ids (code + 1)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def lookup(self, ids: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
        """Vectors [..., E] (zero for unknown posts) and semantic ids [..., levels] (0 for unknown)."""
        ids = np.asarray(ids, np.int64)
        if not len(self.post_ids):  # nothing known yet (a trainer before its first post)
            return np.zeros((*ids.shape, self.dim), np.float32), np.zeros((*ids.shape, levels), np.int32)
        pos = np.minimum(np.searchsorted(self.post_ids, ids), len(self.post_ids) - 1)
        found = self.post_ids[pos] == ids
        vectors = np.where(found[..., None], self.vectors[pos], 0.0).astype(np.float32)
        if self.semantic_ids is None or not levels:
            return vectors, np.zeros((*ids.shape, levels), np.int32)
        return vectors, np.where(found[..., None], self.semantic_ids[pos], 0).astype(np.int32)

    def with_semantic_ids(self, semantic_ids: np.ndarray) -> "ContentTable":
        return replace(self, semantic_ids=semantic_ids)


def encode_posts(posts: Sequence[PostRecord], encoder: ContentEncoder) -> ContentTable:
    """Every post's content vector (a repost takes its original's when the original is known)."""
    by_id = {post.post_id: post for post in posts}
    ids = np.fromiter(sorted(by_id), np.int64, len(by_id))
    shown = []
    for post_id in ids.tolist():
        post = by_id[post_id]
        original = by_id.get(post.repost_of_post_id) if post.repost_of_post_id is not None else None
        shown.append(original if original is not None else post)
    vectors = np.zeros((len(ids), encoder.dim), np.float32)
    for start in range(0, len(shown), _ENCODE_BATCH):
        chunk = shown[start : start + _ENCODE_BATCH]
        vectors[start : start + len(chunk)] = encoder.encode([p.text for p in chunk], [p.media for p in chunk])
    return ContentTable(ids, vectors)


def with_creation_times(impressions: Sequence[Impression], posts: Sequence[PostRecord]) -> list[Impression]:
    """Log lines without `post_created_at_ms` get their post's `created_at_ms` from the posts file."""
    created = {post.post_id: post.created_at_ms for post in posts if post.created_at_ms is not None}
    return [
        replace(imp, post_created_at_ms=created[imp.post_id])
        if imp.post_created_at_ms is None and imp.post_id in created
        else imp
        for imp in impressions
    ]


def content_for_model(cfg: PhoenixConfig, codebooks: np.ndarray | None, posts: Sequence[PostRecord]) -> ContentTable:
    """The posts' content as a trained model reads it: its encoder's vectors and its codebooks' semantic ids."""
    encoder = load_encoder()
    if cfg.content_encoder != encoder.encoder_id:
        raise ValueError(
            f"the model was trained on {cfg.content_encoder!r} vectors; this encoder is {encoder.encoder_id!r}"
        )
    table = encode_posts(posts, encoder)
    if codebooks is None:
        return table
    return table.with_semantic_ids(semantic_ids.model_ids(table.vectors, codebooks, table.vectors.any(1)))
