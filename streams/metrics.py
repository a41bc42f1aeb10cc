"""Prometheus metrics of the candidate pipeline (default registry, names prefixed `foryou_`).

The framework (streams.pipeline) and the Phoenix scorer observe these; nothing else needs to.
"""

from prometheus_client import Counter, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_COUNT_BUCKETS = (0, 1, 10, 50, 100, 250, 500, 1000, 2000, 5000)

STAGE_LATENCY = Histogram(
    "foryou_stage_latency_seconds",
    "Wall time of one pipeline stage component per request.",
    ["pipeline", "kind", "stage"],
    buckets=_LATENCY_BUCKETS,
)
PIPELINE_LATENCY = Histogram(
    "foryou_pipeline_latency_seconds",
    "Wall time of a whole pipeline run (side effects excluded).",
    ["pipeline"],
    buckets=_LATENCY_BUCKETS,
)
SOURCE_CANDIDATES = Histogram(
    "foryou_source_candidates",
    "Candidates returned by a source per request.",
    ["pipeline", "source"],
    buckets=_COUNT_BUCKETS,
)
FILTER_REMOVED = Counter(
    "foryou_filter_removed_total",
    "Candidates removed by a filter, by reason.",
    ["pipeline", "filter", "reason"],
)
DEGRADATIONS = Counter(
    "foryou_pipeline_degradations_total",
    "Stage components that failed or broke their contract; the request was answered without them.",
    ["pipeline", "kind", "stage"],
)
SIDE_EFFECT_FAILURES = Counter(
    "foryou_side_effect_failures_total",
    "Side effects that raised after the answer was sent.",
    ["pipeline", "side_effect"],
)
PHOENIX_BATCH_SIZE = Histogram(
    "foryou_phoenix_batch_candidates",
    "Candidates sent to Phoenix scoring per request.",
    buckets=_COUNT_BUCKETS,
)
PHOENIX_SCORE_SECONDS = Histogram(
    "foryou_phoenix_score_seconds",
    "Wall time of one Phoenix scoring call (run off the event loop).",
    buckets=_LATENCY_BUCKETS,
)
