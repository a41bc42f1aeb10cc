"""Ground truth: the probability that a user takes each action on a post they examine.

For user u, served post p (its content post c is the reposted original for a repost, else p itself) by
author a at time now, with σ the logistic function:

    x        = clip(ln(T · interests[u, topic[c]]), -3, 2.5)      topic match (0 = a uniform user)
    φ        = 2^(-(now - created[p]) / half_life)                 freshness (half_life from the config)
    f        = 1 if u follows a at now else 0                      (world graph, plus client-made follows)
    e        = ln(1 + past positive engagements of u with a)
    r        = x + 2.5 (quality[c] - 0.5) + 0.8 f + 0.5 e + 1.5 (φ - 1)          relevance

    positive action k:  P_k = σ(b_k + c_k · r) · gate_k · 0.1^[subscriber-only ∧ ¬f] · 0.05^[blocked]
    negative action j:  P_j = (1 - tolerance[u]) · σ(b_j + m_j (-x) + q_j (0.5 - quality[c]) - f - 0.5 e
                                                     + 2 [blocked])

"blocked" means u blocked or muted a (the feed should not have served it). Gates: photo_expand only for
photos, vqv only for videos (with an extra -0.3 ln(duration / 30 s) on its logit), quoted_click only for
quotes, follow_author only when u does not follow a.

Dwell: if u dwells, the dwell lasts D ~ LogLogistic(scale S = 3000 ms · e^(0.5 r), shape β = 2.5), so dwell
time rises with affinity; dwell_time is the event "dwelt at least LONG_DWELL_MS":
P(dwell_time) = P(dwell) · σ(β (ln S - ln LONG_DWELL_MS)).

The actions of the 2026-10 publication: not_dwelled is the examined post without a dwell,
P(not_dwelled) = 1 - P(dwell); click_dwell_time is the time spent after a click (a duration drawn like a
dwell's, carried in dwell_ms), P(click_dwell_time) = P(click); video_open has its own row below (videos
only); open_link never happens: the world's posts carry no links.

Every probability is 0 for a post not yet created or already deleted at now, and for the user's own post.
The client draws actions independently with these marginals (except that a block or mute cancels a
follow_author drawn with it).

| action              | b     | c   | gate            |   | negative       | b    | m   | q   |
|---------------------|-------|-----|-----------------|---|----------------|------|-----|-----|
| favorite            | -3.0  | 1.0 |                 |   | not_interested | -3.5 | 0.9 | 3.0 |
| reply               | -4.5  | 0.9 |                 |   | block_author   | -6.5 | 0.9 | 4.0 |
| repost              | -4.0  | 1.0 |                 |   | mute_author    | -6.0 | 0.9 | 3.0 |
| photo_expand        | -1.5  | 0.6 | photo           |   | report         | -7.5 | 0.6 | 6.0 |
| click               | -2.8  | 0.6 |                 |   |                |      |     |     |
| profile_click       | -4.0  | 0.7 |                 |   |                |      |     |     |
| vqv                 | -0.8  | 0.7 | video           |   |                |      |     |     |
| share               | -5.5  | 0.9 |                 |   |                |      |     |     |
| share_via_dm        | -6.0  | 0.9 |                 |   |                |      |     |     |
| share_via_copy_link | -6.0  | 0.8 |                 |   |                |      |     |     |
| dwell               | -0.7  | 0.5 |                 |   |                |      |     |     |
| quote               | -6.0  | 0.9 |                 |   |                |      |     |     |
| quoted_click        | -2.0  | 0.5 | quote           |   |                |      |     |     |
| follow_author       | -5.0  | 1.0 | not following   |   |                |      |     |     |
| video_open          | -2.5  | 0.6 | video           |   |                |      |     |     |

The expected value of a post under weights w is Σ_k w_k P_k over every action (dwell_time,
not_dwelled and click_dwell_time counted as the probabilities above).
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from foryou.world.posts import MEDIA_PHOTO, MEDIA_VIDEO, QUOTE
from foryou.world.world import Relation, World
from topics.actions import ACTION_INDEX, ACTIONS, NEGATIVE_ACTIONS, NUM_ACTIONS

# Explicit positive engagements: every action but the negatives and the passive dwell signals. They count
# as "engagements" in the online metrics and towards a user's familiarity e with an author.
ENGAGEMENT_ACTIONS: frozenset[str] = frozenset(ACTIONS) - NEGATIVE_ACTIONS - {
    "dwell", "dwell_time", "not_dwelled", "click_dwell_time"
}

LONG_DWELL_MS = 8_000
DWELL_BASE_MS = 3_000.0
DWELL_AFFINITY = 0.5
DWELL_SHAPE = 2.5

_POSITIVE: dict[str, tuple[float, float]] = {
    "favorite": (-3.0, 1.0),
    "reply": (-4.5, 0.9),
    "repost": (-4.0, 1.0),
    "photo_expand": (-1.5, 0.6),
    "click": (-2.8, 0.6),
    "profile_click": (-4.0, 0.7),
    "vqv": (-0.8, 0.7),
    "share": (-5.5, 0.9),
    "share_via_dm": (-6.0, 0.9),
    "share_via_copy_link": (-6.0, 0.8),
    "dwell": (-0.7, 0.5),
    "quote": (-6.0, 0.9),
    "quoted_click": (-2.0, 0.5),
    "follow_author": (-5.0, 1.0),
    "video_open": (-2.5, 0.6),
}
_NEGATIVE: dict[str, tuple[float, float, float]] = {
    "not_interested": (-3.5, 0.9, 3.0),
    "block_author": (-6.5, 0.9, 4.0),
    "mute_author": (-6.0, 0.9, 3.0),
    "report": (-7.5, 0.6, 6.0),
}

# Weights for expected value when none are given: positives rewarded, negatives penalised heavily.
DEFAULT_WEIGHTS: dict[str, float] = {
    "favorite": 1.0,
    "reply": 1.5,
    "repost": 2.0,
    "photo_expand": 0.2,
    "click": 0.3,
    "profile_click": 0.5,
    "vqv": 0.5,
    "share": 1.0,
    "share_via_dm": 1.0,
    "share_via_copy_link": 0.8,
    "dwell": 0.2,
    "quote": 2.0,
    "quoted_click": 0.3,
    "follow_author": 4.0,
    "not_interested": -5.0,
    "block_author": -20.0,
    "mute_author": -10.0,
    "report": -30.0,
    "dwell_time": 0.5,
}


def weight_vector(weights: Mapping[str, float] | np.ndarray | None = None) -> np.ndarray:
    """Weights as a vector in ACTIONS order (missing names weigh 0; None means DEFAULT_WEIGHTS)."""
    if weights is None:
        weights = DEFAULT_WEIGHTS
    if isinstance(weights, np.ndarray):
        if weights.shape != (NUM_ACTIONS,):
            raise ValueError(f"weights must have shape ({NUM_ACTIONS},)")
        return weights.astype(np.float64)
    unknown = set(weights) - set(ACTIONS)
    if unknown:
        raise KeyError(f"unknown actions in weights: {sorted(unknown)}")
    return np.array([float(weights.get(name, 0.0)) for name in ACTIONS])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function without overflow warnings


@dataclass(frozen=True)
class Assessment:
    probabilities: np.ndarray  # [N, NUM_ACTIONS]
    dwell_scale_ms: np.ndarray  # [N]: scale S of the log-logistic dwell duration
    visible: np.ndarray  # [N] bool: created, not deleted and not the user's own post at now


class GroundTruth:
    """The documented action model of a world (see the module docstring)."""

    def __init__(self, world: World) -> None:
        self.world = world
        positive = [ACTION_INDEX[name] for name in _POSITIVE]
        negative = [ACTION_INDEX[name] for name in _NEGATIVE]
        self._positive_index = np.array(positive)
        self._negative_index = np.array(negative)
        self._positive_coef = np.array(list(_POSITIVE.values()))  # [15, 2]
        self._negative_coef = np.array(list(_NEGATIVE.values()))  # [4, 3]

    def assess(
        self, user_ids: np.ndarray, post_ids: np.ndarray, now_ms: np.ndarray | int,
        relation: Relation | None = None,
    ) -> Assessment:
        world, posts = self.world, self.world.posts
        population = world.population
        user_ids = np.asarray(user_ids, dtype=np.int64)
        users = world.user_index(user_ids)
        index = world.post_index(post_ids)
        now = np.broadcast_to(np.asarray(now_ms, dtype=np.int64), users.shape)
        authors = posts.author[index]
        if relation is None:
            relation = world.relation(user_ids, authors + 1, now)
        content = posts.content[index]
        quality = posts.quality[content]

        topic_match = np.clip(np.log(world.config.num_topics * population.interests[users, posts.topic[index]]),
                              -3.0, 2.5)
        age = now - posts.created_ms[index]
        freshness = np.exp2(-np.maximum(age, 0) / world.config.freshness_half_life_ms)
        following = relation.following.astype(np.float64)
        familiarity = np.log1p(relation.engagements)
        blocked = relation.blocked.astype(np.float64)
        relevance = topic_match + 2.5 * (quality - 0.5) + 0.8 * following + 0.5 * familiarity
        relevance += 1.5 * (freshness - 1.0)

        logits = self._positive_coef[:, 0] + self._positive_coef[:, 1] * relevance[:, None]
        vqv = list(_POSITIVE).index("vqv")
        video_ms = np.maximum(posts.video_ms[index], 1)
        logits[:, vqv] -= 0.3 * np.log(video_ms / 30_000.0)
        positive = _sigmoid(logits)
        media = posts.media[index]
        gates = np.ones_like(positive)
        gates[:, list(_POSITIVE).index("photo_expand")] = media == MEDIA_PHOTO
        gates[:, vqv] = media == MEDIA_VIDEO
        gates[:, list(_POSITIVE).index("video_open")] = media == MEDIA_VIDEO
        gates[:, list(_POSITIVE).index("quoted_click")] = posts.kind[index] == QUOTE
        gates[:, list(_POSITIVE).index("follow_author")] = 1.0 - following
        paywalled = posts.subscriber_only[index] & ~relation.following
        scale = np.where(paywalled, 0.1, 1.0) * np.where(relation.blocked, 0.05, 1.0)
        positive *= gates * scale[:, None]

        b, m, q = self._negative_coef.T
        negative_logits = (
            b + m * -topic_match[:, None] + q * (0.5 - quality[:, None])
            - following[:, None] - 0.5 * familiarity[:, None] + 2.0 * blocked[:, None]
        )
        negative = (1.0 - population.tolerance[users])[:, None] * _sigmoid(negative_logits)

        probabilities = np.zeros((users.size, NUM_ACTIONS))
        probabilities[:, self._positive_index] = positive
        probabilities[:, self._negative_index] = negative
        dwell_scale = DWELL_BASE_MS * np.exp(DWELL_AFFINITY * relevance)
        long_dwell = _sigmoid(DWELL_SHAPE * (np.log(dwell_scale) - np.log(LONG_DWELL_MS)))
        probabilities[:, ACTION_INDEX["dwell_time"]] = probabilities[:, ACTION_INDEX["dwell"]] * long_dwell
        probabilities[:, ACTION_INDEX["not_dwelled"]] = 1.0 - probabilities[:, ACTION_INDEX["dwell"]]
        probabilities[:, ACTION_INDEX["click_dwell_time"]] = probabilities[:, ACTION_INDEX["click"]]

        visible = (age >= 0) & (now < posts.deleted_ms[index]) & (users != authors)
        probabilities *= visible[:, None]
        return Assessment(probabilities, dwell_scale, visible)

    def action_probabilities(
        self, user_ids: np.ndarray, post_ids: np.ndarray, now_ms: np.ndarray | int,
        relation: Relation | None = None,
    ) -> np.ndarray:
        """[N, NUM_ACTIONS] probabilities in ACTIONS order for the pairs (user_ids[i], post_ids[i]) at now_ms."""
        return self.assess(user_ids, post_ids, now_ms, relation).probabilities

    def expected_value(
        self, user_ids: np.ndarray, post_ids: np.ndarray, now_ms: np.ndarray | int,
        weights: Mapping[str, float] | np.ndarray | None = None, relation: Relation | None = None,
    ) -> np.ndarray:
        """[N] Σ_k weights[k] · P_k (DEFAULT_WEIGHTS when weights is None)."""
        return self.action_probabilities(user_ids, post_ids, now_ms, relation) @ weight_vector(weights)


def sample_dwell_ms(rng: np.random.Generator, scale_ms: np.ndarray | float) -> np.ndarray:
    """Dwell durations from LogLogistic(scale, DWELL_SHAPE) by inverting its CDF."""
    u = rng.random(np.shape(scale_ms))
    u = np.clip(u, 1e-9, 1 - 1e-9)
    dwell = np.rint(np.asarray(scale_ms) * (u / (1.0 - u)) ** (1.0 / DWELL_SHAPE)).astype(np.int64)
    return np.maximum(dwell, 1)
