"""Users, authors and the social graph of the simulated world, generated as numpy arrays.

Users are indexed 0..U-1 (user id = index + 1); every user may also author posts.

- interests[u] ~ Dirichlet(interest_concentration · 1_T): a few topics dominate each user's taste.
- activity[u] = 1 + Pareto(shape), normalised to mean 1: how often the user opens the feed (heavy-tailed).
- tolerance[u] ~ Beta(a, b): the lower, the more readily the user acts negatively (see truth.py).
- author_topics[u] ~ Dirichlet(author_topic_concentration · 1_T), main_topic = its argmax.
- author_quality[u] ~ Beta(quality_a, quality_b).
- popularity[u] = rank(u)^-s / Σ, with rank a random permutation of 1..U (Zipf): the chance of being drawn
  as a follow candidate. productivity[u] ∝ activity[u] · popularity[u]^0.5: how often u posts.
- Follows: user u follows d_u ~ LogNormal(mean follows_per_user) others. Each edge draws
  `follow_candidates` authors from `popularity` and keeps the one maximising
  log(interests[u, main_topic[c]] + 0.02) + Gumbel, so in-degree is heavy-tailed (a few large authors, many
  small) and follows lean towards the user's topics. Self-follows and duplicates are dropped.
- Blocks and mutes: a few users block (mute) one author chosen as the worst topical and quality match among
  random candidates they do not follow; a few mute a keyword of their least-liked topic.
"""

from dataclasses import dataclass

import numpy as np

from foryou.world.config import WorldConfig
from foryou.world.vocab import WORDS_PER_TOPIC, topic_words

# Candidates examined when a user picks an author to block or mute.
_NEGATIVE_CANDIDATES = 20


@dataclass(frozen=True)
class Edges:
    """Directed user→user relations (indices) with the time each was made, sorted by `key` for lookups."""

    src: np.ndarray
    dst: np.ndarray
    ts_ms: np.ndarray
    key: np.ndarray  # src * num_users + dst, ascending

    @classmethod
    def build(cls, src: np.ndarray, dst: np.ndarray, ts_ms: np.ndarray, num_users: int) -> "Edges":
        key = src.astype(np.int64) * num_users + dst.astype(np.int64)
        order = np.argsort(key, kind="stable")
        return cls(src[order], dst[order], ts_ms[order], key[order])

    def __len__(self) -> int:
        return int(self.key.size)

    def active(self, src: np.ndarray, dst: np.ndarray, now_ms: np.ndarray | int, num_users: int) -> np.ndarray:
        """Whether each (src, dst) edge exists and was made at or before now_ms (vectorised)."""
        if self.key.size == 0:
            return np.zeros(np.shape(src), dtype=bool)
        query = np.asarray(src, dtype=np.int64) * num_users + np.asarray(dst, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.key, query), self.key.size - 1)
        return (self.key[pos] == query) & (self.ts_ms[pos] <= now_ms)


@dataclass(frozen=True)
class KeywordMutes:
    user: np.ndarray
    keyword: tuple[str, ...]
    ts_ms: np.ndarray


@dataclass(frozen=True)
class Population:
    interests: np.ndarray  # [U, T] float64, rows sum to 1
    activity: np.ndarray  # [U], mean 1
    tolerance: np.ndarray  # [U] in (0, 1)
    author_topics: np.ndarray  # [U, T]
    main_topic: np.ndarray  # [U]
    author_quality: np.ndarray  # [U] in (0, 1)
    popularity: np.ndarray  # [U], sums to 1
    productivity: np.ndarray  # [U], sums to 1
    follows: Edges
    blocks: Edges
    mutes: Edges
    keyword_mutes: KeywordMutes

    @property
    def num_users(self) -> int:
        return int(self.activity.size)


def _draw_from(rng: np.random.Generator, weights: np.ndarray, shape: int | tuple[int, ...]) -> np.ndarray:
    """Indices drawn with probability ∝ weights (inverse CDF: cheap for millions of draws)."""
    cdf = np.cumsum(weights)
    draws = np.searchsorted(cdf, rng.random(shape) * cdf[-1], side="right")
    return np.minimum(draws, weights.size - 1)


def _relation_times(rng: np.random.Generator, config: WorldConfig, count: int) -> np.ndarray:
    """When relations were made: before the simulated period, or (a late fraction) during it."""
    late = rng.random(count) < config.late_follow_fraction
    before = config.start_ms - config.history_ms + rng.random(count) * config.history_ms
    during = config.start_ms + rng.random(count) * config.duration_ms
    return np.where(late, during, before).astype(np.int64)


def _follow_graph(
    rng: np.random.Generator, config: WorldConfig, interests: np.ndarray, main_topic: np.ndarray,
    popularity: np.ndarray,
) -> Edges:
    num_users = config.num_users
    sigma = config.follow_degree_sigma
    degree = rng.lognormal(np.log(config.follows_per_user) - sigma**2 / 2, sigma, num_users)
    degree = np.clip(np.rint(degree), 1, num_users - 1).astype(np.int64)
    src = np.repeat(np.arange(num_users, dtype=np.int64), degree)
    candidates = _draw_from(rng, popularity, (src.size, config.follow_candidates))
    match = np.log(interests[src[:, None], main_topic[candidates]] + 0.02)
    pick = np.argmax(match + rng.gumbel(size=match.shape), axis=1)
    dst = candidates[np.arange(src.size), pick]
    keep = dst != src
    src, dst = src[keep], dst[keep]
    _, first = np.unique(src * num_users + dst, return_index=True)
    src, dst = src[first], dst[first]
    return Edges.build(src, dst, _relation_times(rng, config, src.size), num_users)


def _negative_relations(
    rng: np.random.Generator, config: WorldConfig, fraction: float, interests: np.ndarray,
    main_topic: np.ndarray, author_quality: np.ndarray, follows: Edges,
) -> Edges:
    """Each chosen user blocks/mutes the worst match among random authors it does not follow."""
    num_users = config.num_users
    users = np.flatnonzero(rng.random(num_users) < fraction)
    candidates = rng.integers(0, num_users, (users.size, _NEGATIVE_CANDIDATES))
    match = interests[users[:, None], main_topic[candidates]] * config.num_topics
    badness = -match - 2 * author_quality[candidates]
    sources = np.repeat(users[:, None], _NEGATIVE_CANDIDATES, axis=1)
    followed = follows.active(sources, candidates, np.iinfo(np.int64).max, num_users)
    badness[followed | (candidates == users[:, None])] = -np.inf
    target = candidates[np.arange(users.size), np.argmax(badness, axis=1)]
    valid = np.isfinite(badness.max(axis=1)) if users.size else np.zeros(0, dtype=bool)
    users, target = users[valid], target[valid]
    ts = config.start_ms - config.history_ms + rng.random(users.size) * (config.history_ms + config.duration_ms)
    return Edges.build(users, target, ts.astype(np.int64), num_users)


def _keyword_mutes(rng: np.random.Generator, config: WorldConfig, interests: np.ndarray) -> KeywordMutes:
    users = np.flatnonzero(rng.random(config.num_users) < config.keyword_mute_user_fraction)
    least_liked = np.argmin(interests[users], axis=1)
    word = rng.integers(0, WORDS_PER_TOPIC, users.size)
    words = topic_words(config.num_topics)
    keywords = tuple(words[t][w] for t, w in zip(least_liked.tolist(), word.tolist(), strict=True))
    ts = config.start_ms - config.history_ms + rng.random(users.size) * (config.history_ms + config.duration_ms)
    return KeywordMutes(users, keywords, ts.astype(np.int64))


def generate_population(rng: np.random.Generator, config: WorldConfig) -> Population:
    num_users, num_topics = config.num_users, config.num_topics
    interests = rng.dirichlet(np.full(num_topics, config.interest_concentration), num_users)
    activity = 1.0 + rng.pareto(config.activity_pareto_shape, num_users)
    activity /= activity.mean()
    tolerance = rng.beta(config.tolerance_a, config.tolerance_b, num_users)
    author_topics = rng.dirichlet(np.full(num_topics, config.author_topic_concentration), num_users)
    main_topic = np.argmax(author_topics, axis=1)
    author_quality = rng.beta(config.quality_a, config.quality_b, num_users)
    rank = rng.permutation(num_users) + 1
    popularity = rank.astype(np.float64) ** -config.popularity_zipf_exponent
    popularity /= popularity.sum()
    productivity = activity * np.sqrt(popularity)
    productivity /= productivity.sum()

    follows = _follow_graph(rng, config, interests, main_topic, popularity)
    blocks = _negative_relations(
        rng, config, config.block_user_fraction, interests, main_topic, author_quality, follows
    )
    mutes = _negative_relations(
        rng, config, config.mute_user_fraction, interests, main_topic, author_quality, follows
    )
    return Population(
        interests=interests,
        activity=activity,
        tolerance=tolerance,
        author_topics=author_topics,
        main_topic=main_topic,
        author_quality=author_quality,
        popularity=popularity,
        productivity=productivity,
        follows=follows,
        blocks=blocks,
        mutes=mutes,
        keyword_mutes=_keyword_mutes(rng, config, interests),
    )
