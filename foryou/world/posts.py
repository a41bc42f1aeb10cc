"""The posts of the simulated world, generated as numpy arrays indexed by creation order.

Post index i has post id `POST_ID_BASE + i`; indices ascend with `created_ms`. How posts are drawn:

- created_ms: uniform over the simulated period, sorted.
- author ~ productivity (heavy-tailed, see population.py).
- kind: original, reply (reply_rate), repost (repost_rate) or quote (quote_rate); the first post is an
  original. A non-original targets an earlier post at an exponential lag (mean: the posts of 6 hours), the
  more appealing (author popularity, quality) of two such draws. Targets that are reposts are replaced by the
  reposted original: replies, reposts and quotes always point at a non-repost.
- conversation root: a reply's root is its parent's root; every other non-repost is its own root
  (conversation_id = root post id); reposts have no conversation.
- topic ~ author's topic mix for originals and quotes; a reply takes its conversation root's topic; a repost
  its original's (the "content" post). quality = sigmoid(logit(author quality) + N(0, noise)); reposts
  carry their original's quality, media, text and video duration.
- media: photo (photo_rate), video (video_rate, duration LogNormal around video_median_ms clipped to
  2 s .. 10 min) or none; subscriber_only: a fraction of originals.
- deletes: delete_rate of posts are deleted after Exp(delete_delay_mean_ms), if within the period. Of those,
  delete_before_create_fraction are quick deletes (0.2–5 s) whose delete event is emitted 1–500 ms BEFORE
  the create (Kafka reordering); `delete_emit_ms` is when the delete event appears in the stream.
"""

from dataclasses import dataclass

import numpy as np

from foryou.world.config import HOUR_MS, WorldConfig
from foryou.world.population import Population
from foryou.world.vocab import WORDS_PER_TOPIC

POST_ID_BASE = 1_000_000_000  # keeps post ids visibly apart from user ids (1..U)
WORDS_PER_POST = 4

ORIGINAL, REPLY, REPOST, QUOTE = 0, 1, 2, 3
MEDIA_NONE, MEDIA_PHOTO, MEDIA_VIDEO = 0, 1, 2
MEDIA_NAMES = ("none", "photo", "video")
NEVER = np.iinfo(np.int64).max  # deleted_ms of posts that are never deleted

_MIN_VIDEO_MS, _MAX_VIDEO_MS = 2_000, 600_000
_TARGET_LAG_MS = 6 * HOUR_MS
_TOPIC_CHUNK = 200_000


@dataclass(frozen=True)
class PostTable:
    author: np.ndarray  # user index
    created_ms: np.ndarray  # int64, ascending
    kind: np.ndarray  # ORIGINAL | REPLY | REPOST | QUOTE
    target: np.ndarray  # parent (reply), original (repost), quoted post (quote); -1 for originals
    root: np.ndarray  # conversation root; -1 for reposts
    content: np.ndarray  # the post whose content is shown: the original for reposts, else itself
    topic: np.ndarray
    quality: np.ndarray  # (0, 1)
    media: np.ndarray  # MEDIA_NONE | MEDIA_PHOTO | MEDIA_VIDEO
    video_ms: np.ndarray  # 0 unless video
    subscriber_only: np.ndarray  # bool
    words: np.ndarray  # [P, WORDS_PER_POST] indices into the topic's words
    deleted_ms: np.ndarray  # NEVER if not deleted
    delete_emit_ms: np.ndarray  # NEVER if not deleted

    def __len__(self) -> int:
        return int(self.created_ms.size)


def _sample_topics(rng: np.random.Generator, mixes: np.ndarray, authors: np.ndarray) -> np.ndarray:
    """One topic per post from its author's topic mix (inverse CDF, in chunks to bound memory)."""
    topics = np.empty(authors.size, dtype=np.int64)
    for start in range(0, authors.size, _TOPIC_CHUNK):
        chunk = authors[start : start + _TOPIC_CHUNK]
        cdf = np.cumsum(mixes[chunk], axis=1)
        u = rng.random(chunk.size)[:, None] * cdf[:, -1:]
        topics[start : start + chunk.size] = np.minimum((cdf <= u).sum(axis=1), mixes.shape[1] - 1)
    return topics


def _resolve(pointer: np.ndarray, follow: np.ndarray) -> np.ndarray:
    """Follow `pointer` while `follow[pointer]`; pointers only go back in time, so this terminates."""
    while True:
        hop = follow[pointer]
        if not hop.any():
            return pointer
        pointer = np.where(hop, pointer[pointer], pointer)


def generate_posts(rng: np.random.Generator, config: WorldConfig, population: Population) -> PostTable:
    count = config.num_posts
    index = np.arange(count, dtype=np.int64)
    created = np.sort(config.start_ms + (rng.random(count) * config.duration_ms).astype(np.int64))
    cdf = np.cumsum(population.productivity)
    author = np.minimum(np.searchsorted(cdf, rng.random(count) * cdf[-1], side="right"), cdf.size - 1)

    rates = [config.reply_rate, config.repost_rate, config.quote_rate]
    kind = rng.choice([ORIGINAL, REPLY, REPOST, QUOTE], size=count, p=[1.0 - sum(rates), *rates])
    kind[0] = ORIGINAL

    # Targets: the more appealing of two earlier posts at an exponential lag.
    mean_lag = max(1.0, count * _TARGET_LAG_MS / config.duration_ms)
    appeal = np.log(population.popularity[author]) + 4.0 * population.author_quality[author]
    lags = 1 + np.floor(rng.exponential(mean_lag, (count, 2))).astype(np.int64)
    options = np.maximum(index[:, None] - lags, 0)
    raw_target = options[index, np.argmax(appeal[options], axis=1)]
    is_repost = kind == REPOST
    # Pointing every non-original at a non-repost: a repost's own pointer is its (resolved) original.
    chain = np.where(kind == ORIGINAL, index, raw_target)
    chain[0] = 0
    resolved = _resolve(chain, is_repost)
    target = np.where(kind == ORIGINAL, -1, resolved)

    root = _resolve(np.where(kind == REPLY, target, index), kind == REPLY)
    root = np.where(is_repost, -1, root)
    content = np.where(is_repost, target, index)

    topic = _sample_topics(rng, population.author_topics, author)
    topic = np.where(kind == REPLY, topic[np.maximum(root, 0)], topic)
    topic = np.where(is_repost, topic[content], topic)

    author_logit = np.log(population.author_quality[author]) - np.log1p(-population.author_quality[author])
    quality = 1.0 / (1.0 + np.exp(-(author_logit + rng.normal(0.0, config.post_quality_noise, count))))
    quality = np.where(is_repost, quality[content], quality)

    draw = rng.random(count)
    media = np.where(draw < config.photo_rate, MEDIA_PHOTO, MEDIA_NONE)
    media = np.where((draw >= config.photo_rate) & (draw < config.photo_rate + config.video_rate), MEDIA_VIDEO, media)
    media = np.where(is_repost, media[content], media)
    video_ms = np.clip(config.video_median_ms * np.exp(rng.normal(0.0, 0.8, count)), _MIN_VIDEO_MS, _MAX_VIDEO_MS)
    video_ms = np.where(media == MEDIA_VIDEO, video_ms.astype(np.int64), 0)
    video_ms = np.where(is_repost, video_ms[content], video_ms)

    subscriber_only = (kind == ORIGINAL) & (rng.random(count) < config.subscriber_only_rate)
    words = rng.integers(0, WORDS_PER_TOPIC, (count, WORDS_PER_POST), dtype=np.int8)
    words = np.where(is_repost[:, None], words[content], words)

    deleted = rng.random(count) < config.delete_rate
    quick = deleted & (rng.random(count) < config.delete_before_create_fraction)
    delay = rng.exponential(config.delete_delay_mean_ms, count).astype(np.int64) + 1
    delay = np.where(quick, rng.integers(200, 5_000, count), delay)
    deleted &= created + delay < config.end_ms
    deleted_ms = np.where(deleted, created + delay, NEVER)
    early_emit = created - rng.integers(1, 500, count)
    delete_emit_ms = np.where(deleted & quick, early_emit, deleted_ms)

    return PostTable(
        author=author,
        created_ms=created,
        kind=kind,
        target=target,
        root=root,
        content=content,
        topic=topic,
        quality=quality,
        media=media,
        video_ms=video_ms,
        subscriber_only=subscriber_only,
        words=words,
        deleted_ms=deleted_ms,
        delete_emit_ms=delete_emit_ms,
    )
