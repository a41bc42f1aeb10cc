"""Prometheus metrics of the worker's own (the pipeline's live in `streams.metrics`).

All live in prometheus-client's default registry, which Faust's Prometheus sensor serves at `/metrics`.
"""

from prometheus_client import Counter, Gauge, Histogram

# The prefix of Faust's own sensor metrics (`setup_prometheus_sensors`): fixed rather than the app id, so one
# dashboard and one set of alerts fit every deployment.
FAUST_METRICS_PREFIX = "foryou_faust"

records_ingested = Counter(
    "foryou_records_ingested_total", "Valid records read from a public input topic.", ["topic"]
)
dead_letters = Counter(
    "foryou_dead_letters_total", "Records sent to the dead-letter topic, by source topic and reason.",
    ["topic", "reason"],
)
table_corrupt_values = Counter(
    "foryou_table_corrupt_values_total",
    "User-table values read back that their store could not decode: dead-lettered, the key reset.",
    ["table"],
)
refused_deletes = Counter(
    "foryou_refused_deletes_total",
    "Post deletes this worker's replica refused because they named another author than the post's.",
)
users_expired = Counter(
    "foryou_users_expired_total",
    "Users whose idle state left a user table (FORYOU_USER_IDLE_MS; served histories past their TTL).",
    ["table"],
)
model_load_failures = Counter(
    "foryou_model_load_failures_total",
    "Checkpoints that could not be loaded (at start: the worker serves its fallback model; on reload: it "
    "keeps the current one).",
    ["when"],
)
feed_answers = Counter(
    "foryou_feed_answers_total", "Answers sent on ranked-feeds, by status (ok or error).", ["status"]
)
feed_latency = Histogram(
    "foryou_feed_request_latency_seconds",
    "From reading a feed request off its public topic to sending its answer.",
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0),
)
duplicate_requests = Counter(
    "foryou_feed_requests_duplicate_total",
    "Feed requests already answered (redelivered), not answered again.",
)
expired_requests = Counter(
    "foryou_feed_requests_expired_total",
    "Feed requests older than FORYOU_REQUEST_TTL_MS when they would run: error answer.",
)
events_processed = Counter(
    "foryou_events_processed_total", "Records the worker's agents have processed (counted per batch).", ["topic"]
)
records_produced = Counter(
    "foryou_records_produced_total", "Records the worker produced that the broker acknowledged.", ["topic"]
)
shed_requests = Counter(
    "foryou_shed_requests_total",
    "Feed requests answered at once with an error instead of a feed: reason overloaded (FORYOU_MAX_IN_FLIGHT "
    "requests already in flight) or expired (older than FORYOU_REQUEST_TTL_MS when they would run).",
    ["reason"],
)
requests_in_flight = Gauge("foryou_feed_requests_in_flight", "Feed requests admitted and not yet answered.")
post_store_posts = Gauge("foryou_post_store_posts", "Live posts in this worker's post-store replica.")
post_replica_lag = Gauge(
    "foryou_post_replica_lag_records", "Records of the post log this worker's replica has not applied yet."
)
model_info = Gauge("foryou_model_info", "The ranking model in use (value 1).", ["version"])

# Operations (agents/ops.py): collected by background timers, never on the request path.
table_users = Gauge(
    "foryou_table_users",
    "Users (keys) in this worker's active partitions of a user table, counted every few seconds.",
    ["table"],
)
consumer_lag = Gauge(
    "foryou_consumer_lag_records",
    "End offset minus the group's committed offset, per partition this worker consumes.",
    ["topic", "partition"],
)
assigned_partitions = Gauge(
    "foryou_assigned_partitions", "Partitions of an input topic this worker consumes.", ["topic"]
)
rebalances = Counter("foryou_rebalances_total", "Consumer-group rebalances this worker completed.")
consumer_stale_records = Counter(
    "foryou_consumer_stale_records_total",
    "Records fetched before a rebalance or seek and held back (read again from the committed offset; "
    "agents/consumer.py).",
)
ops_errors = Counter(
    "foryou_ops_collect_errors_total", "Failed background collections (lag or table sizes), by kind.", ["kind"]
)

# Delivery and liveness (agents/forwarder.py, agents/loop_lag.py, agents/order_barrier.py).
forwarder_queued = Gauge(
    "foryou_forwarder_queued_records",
    "Records the worker produced that the broker has not acknowledged yet (librdkafka queue plus overflow).",
)
produce_failures = Counter(
    "foryou_produce_failures_total",
    "Deliveries the broker refused; each such record is sent again, its input not acknowledged meanwhile.",
    ["topic"],
)
event_loop_lag = Gauge(
    "foryou_event_loop_lag_seconds",
    "The largest delay, over the last few seconds, between when a periodic timer was due and when it ran.",
)
order_barrier_wait = Histogram(
    "foryou_order_barrier_wait_seconds",
    "How long a batch of feed requests waited for earlier engagements and graph changes to be forwarded.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
order_barrier_errors = Counter(
    "foryou_order_barrier_errors_total", "Failed broker queries of the order barrier (each is retried with backoff)."
)
counted_records = Counter(
    "foryou_engagement_counts_records_total",
    "Records this worker's engagement-count replica read, by topic and outcome (counted, skipped).",
    ["topic", "outcome"],
)
