"""Delivery (issue 12, found by reading): a produce the broker refuses is sent again, and its input is not
acknowledged meanwhile. Before the fix the ingest batch was acknowledged in a `finally` when its flush
failed: the engagement's offset was committed and the engagement never reached the user's state."""

import uuid

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from agents.topology import consumer_lag
from foryou.client import FeedClient
from tests.integration.conftest import StartWorker
from tests.integration.helpers import eventually, metric_value, worker_json
from topics.specs import ENGAGEMENT_EVENTS


def _set_max_message_bytes(admin: AdminClient, topic: str, value: int) -> None:
    entry = ConfigEntry("max.message.bytes", str(value), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def test_a_forward_the_broker_refuses_is_sent_again_and_not_acknowledged_meanwhile(
    start_worker: StartWorker, client: FeedClient, kafka_bootstrap: str, ids: iter
) -> None:
    app_id = f"foryou-refused-{uuid.uuid4().hex[:8]}"
    user_events = f"{app_id}-user-events"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    # The internal topic refuses every forwarded record (too large for it) until an operator fixes it.
    created = admin.create_topics([NewTopic(user_events, 4, 1, config={"max.message.bytes": "64"})])
    created[user_events].result(30)
    # The January preset, as the other delivery tests (a refresh may show a post again).
    worker = start_worker(app_id=app_id, FORYOU_POLICY="reverse-chron", FORYOU_PRESET="seed-2026-01")
    user, post, author = next(ids), next(ids), next(ids)
    client.engage(user, post, author, "favorite")
    client.flush()

    eventually(lambda: metric_value(worker, "foryou_produce_failures_total") >= 2, timeout_s=90,
               explain=worker.tail)
    # Refused and not acknowledged: the group's offset stays before the engagement.
    assert sum(consumer_lag(kafka_bootstrap, app_id, [ENGAGEMENT_EVENTS]).values()) == 1
    assert worker_json(worker, "/ready")[0] == 200  # the worker keeps serving

    _set_max_message_bytes(admin, user_events, 1024 * 1024)

    def applied() -> list | None:
        return worker_json(worker, f"/inspect/user/{user}")[1].get("actions")

    actions = eventually(applied, timeout_s=90, explain=worker.tail)
    assert [(a["post_id"], a["actions"]) for a in actions] == [(post, ["favorite"])]
    eventually(lambda: not any(consumer_lag(kafka_bootstrap, app_id, [ENGAGEMENT_EVENTS]).values()), timeout_s=60)
