"""The simulated world of foryou: users, authors, a follow graph and posts over time, a documented ground
truth of how users act on posts, simulated clients, online metrics and an offline closed loop.

Everything is deterministic from `WorldConfig.seed` (numpy Generators only, no global random state).
See docs/world.md for the formulas and presets.
"""

from foryou.world.client import ClientBehaviour, ClientConfig, Reaction, UserState, Viewed, feed_post_ids
from foryou.world.config import PRESETS, WorldConfig, preset
from foryou.world.metrics import OnlineMetrics, ServedPost, WindowStats, describe_feed
from foryou.world.offline import (
    Impression,
    RankingMetrics,
    export_engagement_log,
    ground_truth_ranking_metrics,
)
from foryou.world.simulate import (
    Policy,
    SimulationResult,
    oracle_policy,
    random_policy,
    reverse_chronological_policy,
    simulate_offline,
)
from foryou.world.truth import DEFAULT_WEIGHTS, ENGAGEMENT_ACTIONS, GroundTruth, weight_vector
from foryou.world.wire import WorldEvent
from foryou.world.world import Relation, World

__all__ = [
    "DEFAULT_WEIGHTS",
    "ENGAGEMENT_ACTIONS",
    "PRESETS",
    "ClientBehaviour",
    "ClientConfig",
    "GroundTruth",
    "Impression",
    "OnlineMetrics",
    "Policy",
    "RankingMetrics",
    "Reaction",
    "Relation",
    "ServedPost",
    "SimulationResult",
    "UserState",
    "Viewed",
    "WindowStats",
    "World",
    "WorldConfig",
    "WorldEvent",
    "describe_feed",
    "export_engagement_log",
    "feed_post_ids",
    "ground_truth_ranking_metrics",
    "oracle_policy",
    "preset",
    "random_policy",
    "reverse_chronological_policy",
    "simulate_offline",
    "weight_vector",
]
