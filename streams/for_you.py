"""The declared pipelines: For You (Phoenix-ranked) and reverse-chron (in-network, newest first).

Each is one list of stages in execution order; streams.pipeline runs them and documents the semantics.
Stages marked "2026-10" come from the October 2026 publication; the preset (streams/defaults.toml) switches
them on (production-2026-10) or leaves them declared but disabled (seed-2026-01: `explain` lists them as
disabled). The others are the January 2026 design's.
"""

from concurrent.futures import Executor

from scoring.author_cold_start import AuthorColdStartScorer
from scoring.author_diversity import AuthorDiversityScorer
from scoring.dpp import DppReranker
from scoring.offset import ScoreOffset
from scoring.oon import OONScorer
from scoring.phoenix_scorer import PhoenixScorer
from scoring.recency import recency_score
from scoring.selector import TopKSelector
from scoring.weighted import WeightedScorer
from streams.bidirectional_follow import BidirectionalFollowHydrator
from streams.config import ForYouConfig
from streams.engagement_counts import EngagementCountsHydrator
from streams.filters import (
    AgeFilter,
    AuthorSocialgraphFilter,
    CoreDataHydrationFilter,
    DedupConversationFilter,
    DropDuplicatesFilter,
    IneligibleSubscriptionFilter,
    MutedKeywordFilter,
    OONRetweetReplyFilter,
    PreviouslySeenFilter,
    PreviouslyServedFilter,
    RepostDeduplicationFilter,
    SelfPostFilter,
    VisibilityFilter,
)
from streams.hydrators import (
    AuthorHydrator,
    ContentEmbeddingHydrator,
    CoreDataHydrator,
    InNetworkHydrator,
    SubscriptionHydrator,
    VisibilityHydrator,
)
from streams.pipeline import CandidatePipeline
from streams.popular_posts import PopularPostsSource
from streams.ports import EngagementCountsStore, FeedSink, PostStore, RankerPort, UserStateStore
from streams.query_hydrators import ActionSequenceHydrator, ServedHistoryHydrator, UserFeaturesHydrator
from streams.side_effects import PublishImpressions, RecordServed
from streams.sources import PhoenixRetrievalSource, ThunderSource
from streams.stages import Filter

REVERSE_CHRON = "reverse-chron"


def _filters(config: ForYouConfig, post_store: PostStore) -> list[Filter]:
    """The candidate filters, in order, shared by both pipelines."""
    cfg = config.filters
    return [
        DropDuplicatesFilter(),
        CoreDataHydrationFilter(),
        AgeFilter(cfg.max_post_age_ms),
        SelfPostFilter(),
        RepostDeduplicationFilter(),
        IneligibleSubscriptionFilter(),
        PreviouslySeenFilter(),
        PreviouslyServedFilter(cfg.served_filter_all_requests),
        MutedKeywordFilter(),
        AuthorSocialgraphFilter(),
        OONRetweetReplyFilter(post_store, cfg.oon_retweet_reply),  # 2026-10
    ]


def for_you_pipeline(
    *,
    config: ForYouConfig,
    post_store: PostStore,
    user_state: UserStateStore,
    counts: EngagementCountsStore,
    ranker: RankerPort,
    sink: FeedSink,
    executor: Executor | None = None,
) -> CandidatePipeline:
    """`executor` runs the ranker's calls (default: asyncio's default thread pool; see streams.offload)."""
    offset = ScoreOffset.from_weights(config.weights, config.scoring.negative_scores_offset)
    serve_all = config.filters.served_filter_all_requests
    sources = config.sources
    return CandidatePipeline(
        name="for-you",
        query_hydrators=[
            ActionSequenceHydrator(user_state),
            UserFeaturesHydrator(user_state),
            ServedHistoryHydrator(user_state),
        ],
        sources=[
            ThunderSource(post_store, sources.thunder_max, config.filters.max_post_age_ms, serve_all),
            PhoenixRetrievalSource(ranker, sources.retrieval_max, serve_all, executor),
            PopularPostsSource(post_store, counts, sources.popular_max, config.popular, serve_all),  # 2026-10
        ],
        hydrators=[
            InNetworkHydrator(),
            CoreDataHydrator(post_store),
            AuthorHydrator(post_store),
            ContentEmbeddingHydrator(post_store),
            EngagementCountsHydrator(counts),  # 2026-10
            BidirectionalFollowHydrator(post_store, config.scoring.mutual_follow_reply_boost > 0),  # 2026-10
        ],
        dependent_hydrators=[SubscriptionHydrator()],
        filters=_filters(config, post_store),
        scorers=[
            PhoenixScorer(ranker, executor),
            WeightedScorer(
                config.weights, config.scoring.vqv_min_duration_ms, offset, config.scoring.mutual_follow_reply_boost
            ),
            AuthorDiversityScorer(config.diversity.decay, config.diversity.floor, offset),
            OONScorer(config.oon.factor, offset, config.oon.in_network_replies_reposts),
            AuthorColdStartScorer(config.cold_start),  # 2026-10
            DppReranker(config.dpp),  # 2026-10
        ],
        selector=TopKSelector(config.results.selection_size),
        post_selection_hydrators=[VisibilityHydrator(post_store)],
        post_selection_filters=[VisibilityFilter(config.visibility.allowed_safety_labels), DedupConversationFilter()],
        side_effects=[RecordServed(sink), PublishImpressions(sink)],
        model=lambda: ranker.version,
        fallback_name=REVERSE_CHRON,
        fallback_score=recency_score,
    )


def reverse_chron_pipeline(
    *, config: ForYouConfig, post_store: PostStore, user_state: UserStateStore, sink: FeedSink
) -> CandidatePipeline:
    """The comparison policy: in-network posts only, newest first, the same filters, no model."""
    return CandidatePipeline(
        name=REVERSE_CHRON,
        query_hydrators=[
            ActionSequenceHydrator(user_state),
            UserFeaturesHydrator(user_state),
            ServedHistoryHydrator(user_state),
        ],
        sources=[
            ThunderSource(
                post_store,
                config.sources.thunder_max,
                config.filters.max_post_age_ms,
                config.filters.served_filter_all_requests,
            )
        ],
        hydrators=[InNetworkHydrator(), CoreDataHydrator(post_store), AuthorHydrator(post_store)],
        dependent_hydrators=[SubscriptionHydrator()],
        filters=_filters(config, post_store),
        scorers=[],
        selector=TopKSelector(config.results.selection_size),
        post_selection_hydrators=[VisibilityHydrator(post_store)],
        post_selection_filters=[VisibilityFilter(config.visibility.allowed_safety_labels), DedupConversationFilter()],
        side_effects=[RecordServed(sink), PublishImpressions(sink)],
        model=lambda: REVERSE_CHRON,
        fallback_name=REVERSE_CHRON,
        fallback_score=recency_score,
    )
