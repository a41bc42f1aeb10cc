"""The knobs of the simulated world and its three presets (`tiny`, `demo`, `large`).

Every rate below is a fraction of posts or users unless its name says otherwise; times are milliseconds.
The presets differ only in size: the same seed and preset always generate the same world.
"""

from dataclasses import dataclass, replace

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# 2023-11-14T22:13:20Z: a fixed epoch keeps generated timestamps identical across runs and machines.
DEFAULT_START_MS = 1_700_000_000_000


@dataclass(frozen=True)
class WorldConfig:
    num_users: int
    num_posts: int
    num_topics: int = 16
    seed: int = 0
    start_ms: int = DEFAULT_START_MS
    duration_ms: int = 7 * DAY_MS

    # Users. Interests ~ Dirichlet(interest_concentration) over topics: small values make users care about a
    # few topics only. Activity ~ 1 + Pareto(activity_pareto_shape), normalised to mean 1 (heavy-tailed).
    # Tolerance ~ Beta(tolerance_a, tolerance_b): how much bad content a user takes before acting negatively.
    interest_concentration: float = 0.3
    activity_pareto_shape: float = 1.5
    tolerance_a: float = 4.0
    tolerance_b: float = 2.0

    # Authors (every user may post). Topic mix ~ Dirichlet(author_topic_concentration); quality ~ Beta.
    author_topic_concentration: float = 0.15
    quality_a: float = 2.5
    quality_b: float = 2.0
    # Per-post quality noise around the author's quality, on the logit scale.
    post_quality_noise: float = 0.6
    # Posts below this quality carry the safety label "spam".
    spam_quality: float = 0.03

    # Follow graph: out-degree ~ LogNormal with this mean; targets drawn from a Zipf popularity over a random
    # ranking of users (exponent below), then the best topical match among follow_candidates draws.
    follows_per_user: float = 30.0
    follow_degree_sigma: float = 0.8
    popularity_zipf_exponent: float = 1.0
    follow_candidates: int = 3
    # Follows made during the simulated period (the rest exist before start_ms).
    late_follow_fraction: float = 0.1
    # How far before start_ms the pre-existing graph was built.
    history_ms: int = 30 * DAY_MS

    # Post mix (fractions of all posts; the rest are originals).
    reply_rate: float = 0.25
    repost_rate: float = 0.12
    quote_rate: float = 0.05
    # Media of originals, replies and quotes (reposts carry their original's media).
    photo_rate: float = 0.2
    video_rate: float = 0.1
    video_median_ms: int = 30_000
    subscriber_only_rate: float = 0.02
    # Deletes: fraction of posts deleted after a delay ~ Exp(delete_delay_mean_ms); of those, a fraction is
    # emitted before its create (Kafka may reorder a quick delete ahead of its create).
    delete_rate: float = 0.02
    delete_delay_mean_ms: int = 2 * HOUR_MS
    delete_before_create_fraction: float = 0.2

    # Social-graph negatives created by the generator, consistent with the ground truth (users block/mute
    # authors of their least-liked topics and mute a keyword of their least-liked topic).
    block_user_fraction: float = 0.02
    mute_user_fraction: float = 0.03
    keyword_mute_user_fraction: float = 0.03

    # Freshness half-life of the ground truth (see truth.py).
    freshness_half_life_ms: int = 6 * HOUR_MS

    def __post_init__(self) -> None:
        if self.num_users < 2 or self.num_posts < 1 or self.num_topics < 2:
            raise ValueError("a world needs at least 2 users, 1 post and 2 topics")
        if self.reply_rate + self.repost_rate + self.quote_rate >= 1.0:
            raise ValueError("reply_rate + repost_rate + quote_rate must leave room for originals")
        if self.photo_rate + self.video_rate > 1.0:
            raise ValueError("photo_rate + video_rate must be at most 1")

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


PRESETS: dict[str, WorldConfig] = {
    "tiny": WorldConfig(num_users=300, num_posts=4_000, duration_ms=2 * DAY_MS, follows_per_user=20.0),
    "demo": WorldConfig(num_users=2_000, num_posts=20_000, duration_ms=3 * DAY_MS),
    "large": WorldConfig(num_users=100_000, num_posts=1_000_000, duration_ms=7 * DAY_MS),
}


def preset(name: str, seed: int = 0, **overrides: object) -> WorldConfig:
    """A preset by name with its seed (and any field) replaced."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return replace(PRESETS[name], seed=seed, **overrides)  # type: ignore[arg-type]
