"""The declared pipelines: For You (Phoenix-ranked) and reverse-chron (in-network, newest first).

Each is one list of stages in execution order; streams.pipeline runs them and documents the semantics.
"""

from concurrent.futures import Executor

from scoring.author_diversity import AuthorDiversityScorer
from scoring.offset import ScoreOffset
from scoring.oon import OONScorer
from scoring.phoenix_scorer import PhoenixScorer
from scoring.recency import recency_score
from scoring.selector import TopKSelector
from scoring.weighted import WeightedScorer
from streams.config import ForYouConfig
from streams.filters import (
    AgeFilter,
    AuthorSocialgraphFilter,
    CoreDataHydrationFilter,
    DedupConversationFilter,
    DropDuplicatesFilter,
    IneligibleSubscriptionFilter,
    MutedKeywordFilter,
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
from streams.ports import FeedSink, PostStore, RankerPort, UserStateStore
from streams.query_hydrators import ActionSequenceHydrator, ServedHistoryHydrator, UserFeaturesHydrator
from streams.side_effects import PublishImpressions, RecordServed
from streams.sources import PhoenixRetrievalSource, ThunderSource
from streams.stages import Filter

REVERSE_CHRON = "reverse-chron"


def _filters(config: ForYouConfig) -> list[Filter]:
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
    ]


def for_you_pipeline(
    *,
    config: ForYouConfig,
    post_store: PostStore,
    user_state: UserStateStore,
    ranker: RankerPort,
    sink: FeedSink,
    executor: Executor | None = None,
) -> CandidatePipeline:
    """`executor` runs the ranker's calls (default: asyncio's default thread pool; see streams.offload)."""
    offset = ScoreOffset.from_weights(config.weights, config.scoring.negative_scores_offset)
    serve_all = config.filters.served_filter_all_requests
    return CandidatePipeline(
        name="for-you",
        query_hydrators=[
            ActionSequenceHydrator(user_state),
            UserFeaturesHydrator(user_state),
            ServedHistoryHydrator(user_state),
        ],
        sources=[
            ThunderSource(post_store, config.sources.thunder_max, config.filters.max_post_age_ms, serve_all),
            PhoenixRetrievalSource(ranker, config.sources.retrieval_max, serve_all, executor),
        ],
        hydrators=[
            InNetworkHydrator(),
            CoreDataHydrator(post_store),
            AuthorHydrator(post_store),
            ContentEmbeddingHydrator(post_store),
        ],
        dependent_hydrators=[SubscriptionHydrator()],
        filters=_filters(config),
        scorers=[
            PhoenixScorer(ranker, executor),
            WeightedScorer(config.weights, config.scoring.vqv_min_duration_ms, offset),
            AuthorDiversityScorer(config.diversity.decay, config.diversity.floor, offset),
            OONScorer(config.oon.factor, offset),
        ],
        selector=TopKSelector(),
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
        filters=_filters(config),
        scorers=[],
        selector=TopKSelector(),
        post_selection_hydrators=[VisibilityHydrator(post_store)],
        post_selection_filters=[VisibilityFilter(config.visibility.allowed_safety_labels), DedupConversationFilter()],
        side_effects=[RecordServed(sink), PublishImpressions(sink)],
        model=lambda: REVERSE_CHRON,
        fallback_name=REVERSE_CHRON,
        fallback_score=recency_score,
    )
