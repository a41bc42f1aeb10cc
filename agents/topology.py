"""The topics the worker reads and writes, and their creation.

Public topics are the wire contract (`topics.specs`). Two internal topics, named after the app id, carry
validated events between the worker's own agents:

- `<app>-user-events`: every user-keyed event (engagements, social-graph changes, feed requests), sent to
  the partition `topics.partitioning.partition_for_id(user_id)`. Producers outside may partition the public
  topics however they like (librdkafka's default partitioner differs from the Java client's); after this hop
  a user's events, state and feed requests all live in one partition, in order, on one worker.
- `<app>-post-log`: validated post creates and deletes plus follower-count deltas. Every worker reads all
  of it into its own full post-store replica, so any user's feed can include any author's posts.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, NewTopic

from foryou.settings import DAY_MS, Settings, librdkafka_config
from topics.specs import TOPICS


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    config: dict[str, str]


# The Faust tables keyed by user id; each has a compacted changelog `<app>-<table>-changelog`.
USER_TABLES = ("user-actions", "social-graph", "served-history", "answered-requests")
ANSWERED_TABLE = USER_TABLES[3]


def changelog_topic(settings: Settings, table: str) -> str:
    return f"{settings.app_id}-{table}-changelog"


def user_events_topic(settings: Settings) -> str:
    return f"{settings.app_id}-user-events"


def post_log_topic(settings: Settings) -> str:
    return f"{settings.app_id}-post-log"


def planned_topics(settings: Settings) -> list[TopicPlan]:
    plans = [TopicPlan(spec.name, spec.partitions, dict(spec.config)) for spec in TOPICS]
    plans.append(
        TopicPlan(user_events_topic(settings), settings.partitions, {"retention.ms": str(7 * DAY_MS)})
    )
    # Kept a day longer than posts live, so a new worker's replica can rebuild every live post from it.
    plans.append(
        TopicPlan(
            post_log_topic(settings),
            settings.partitions,
            {"retention.ms": str(settings.post_retention_ms + DAY_MS), "cleanup.policy": "delete"},
        )
    )
    # Created here rather than by Faust, so that every worker's first metadata already holds them: a worker
    # that sees a changelog with no partitions yet crashes its agent (faust PartitionsMismatch).
    plans.extend(
        TopicPlan(changelog_topic(settings, table), settings.partitions, {"cleanup.policy": "compact"})
        for table in USER_TABLES
    )
    return plans


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(librdkafka_config(settings.bootstrap, settings.kafka_security, {"log_level": 3}))


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> Iterator[str]:
    """Create every planned topic that is missing (idempotent); yields one line per topic."""
    admin = admin_client(settings)
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [plan for plan in planned_topics(settings) if plan.name not in existing]
    new_topics = [
        NewTopic(p.name, num_partitions=p.partitions, replication_factor=-1, config=p.config) for p in missing
    ]
    futures = admin.create_topics(new_topics, operation_timeout=timeout_s) if missing else {}
    for plan in planned_topics(settings):
        if plan.name in futures:
            try:
                futures[plan.name].result()
            except Exception as exc:  # a concurrent creator (another worker) is fine; others are not
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
            yield f"created {plan.name} partitions={plan.partitions}"
        else:
            yield f"exists  {plan.name} partitions={len(existing[plan.name].partitions)}"


def partition_count(settings: Settings, topic: str, timeout_s: float = 30.0, appear_within_s: float = 15.0) -> int:
    """The topic's partition count; a topic just created (by this worker, at start) may take a moment to show
    in the metadata, so a missing one is asked for again until `appear_within_s` has passed."""
    admin = admin_client(settings)
    deadline = time.monotonic() + appear_within_s
    while True:
        found = admin.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if found is not None and found.error is None and found.partitions:
            return len(found.partitions)
        if time.monotonic() > deadline:
            raise SystemExit(f"topic {topic} does not exist on {settings.bootstrap}: run `foryou topics create`")
        time.sleep(0.5)


def describe_topics(settings: Settings) -> Iterator[str]:
    existing = admin_client(settings).list_topics(timeout=30).topics
    for plan in planned_topics(settings):
        found = existing.get(plan.name)
        state = f"partitions={len(found.partitions)}" if found else "missing"
        yield f"{plan.name:32} {state}"


def consumer_lag(bootstrap: str, group: str, topics: list[str], timeout_s: float = 10.0) -> dict[tuple[str, int], int]:
    """Per partition of `topics`: end offset minus the group's committed offset (the whole log if none)."""
    from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition

    admin = AdminClient(librdkafka_config(bootstrap, config={"log_level": 3}))
    metadata = admin.list_topics(timeout=timeout_s)
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        if topic in metadata.topics
        for p in metadata.topics[topic].partitions
    ]
    committed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, partitions)])[group].result()
    offsets = {(tp.topic, tp.partition): tp.offset for tp in committed.topic_partitions}
    probe = Consumer(librdkafka_config(bootstrap, config={"group.id": f"{group}-lag-probe", "log_level": 3}))
    try:
        lag = {}
        for tp in partitions:
            low, high = probe.get_watermark_offsets(tp, timeout=timeout_s)
            position = offsets.get((tp.topic, tp.partition), -1)
            lag[(tp.topic, tp.partition)] = high - (position if position >= 0 else low)
        return lag
    finally:
        probe.close()
