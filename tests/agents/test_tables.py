"""User-table values that come back undecodable are explained, not fatal: dead-lettered, counted, reset."""

import time
from pathlib import Path

import faust
import orjson
import pytest
from faust.types import EventT, Message

from agents import metrics
from agents.dead_letters import DeadLetters
from agents.feeds import REMEMBERED_REQUESTS, merge_answered
from agents.tables import CheckedTable, _changelog_problem, check_answered_value, guarded_table
from stores import action_sequences, served_history, social_graph
from stores.action_sequences import UserActionSequences
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from topics.dead_letters import parse_dead_letter_headers
from topics.partitioning import partition_for_id

NOW = int(time.time() * 1000)


def valid_values() -> dict[str, tuple]:
    actions, graph, served = {}, {}, {}
    UserActionSequences(actions).record(
        {"user_id": 1, "post_id": 2, "author_id": 3, "action": "reply", "surface": "home", "ts_ms": 4, "dwell_ms": 5}
    )
    SocialGraph(graph).apply({"type": "follow", "user_id": 1, "target_id": 3})
    SocialGraph(graph).apply({"type": "mute_keyword", "user_id": 1, "keyword": "Spoilers"})
    ServedHistory(served).record(1, [7, 8], NOW)
    return {
        "actions": (action_sequences.check_value, actions[1]),
        "graph": (social_graph.check_value, graph[1]),
        "served": (served_history.check_value, served[1]),
        "answered": (check_answered_value, orjson.dumps(["r1", "r2"])),
    }


@pytest.mark.parametrize("table", ["actions", "graph", "served", "answered"])
def test_what_a_store_wrote_passes_its_check_and_damaged_bytes_do_not(table: str) -> None:
    check, value = valid_values()[table]
    check(value)
    damaged_values = [b"\xff" * 7, value[:-1], value + b"\x00", b"\x00" * 33 + b"\xff" * 33, b'{"a": 1}']
    if table != "answered":  # an empty list is a valid answered-requests value
        damaged_values.append(b"[]")
    for damaged in damaged_values:
        with pytest.raises(Exception):  # noqa: B017 - ValueError, struct.error, orjson's: any will do
            check(damaged)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"42", None, None),  # a deletion of a user's state
        (None, b"x", "bad_key"),
        (b"[]", b"x", "bad_key"),
        (b'"42"', b"x", "bad_key"),
        (b"-1", b"x", "bad_key"),
        (b"99999999999999999999", b"x", "bad_key"),
        (b"42", b"[]", "corrupt_state"),
        (b"42", b"\x00" * 15, "corrupt_state"),
    ],
)
def test_changelog_records_are_checked_key_first(key: bytes | None, value: bytes | None, reason: str | None) -> None:
    problem = _changelog_problem(key, value, served_history.check_value)
    assert (problem[0] if problem else None) == reason


def test_a_corrupt_value_read_back_is_dead_lettered_once_counted_and_read_as_empty() -> None:
    sent: list[tuple] = []
    raw: dict[int, bytes] = {}
    table = CheckedTable(
        raw, name="served-history", changelog_topic="app-served-history-changelog", partitions=4,
        check_value=served_history.check_value, dead_letters=DeadLetters(lambda *args: sent.append(args)),
    )
    before = metrics.table_corrupt_values.labels("served-history")._value.get()
    history = ServedHistory(table)
    raw[5] = b"\x01" * 15  # not a whole entry: what a stray changelog record or a damaged file could leave
    assert history.served_ids(5, now_ms=NOW) == set()  # read as absent, not an exception
    assert history.served_ids(5, now_ms=NOW) == set()
    assert len(sent) == 1  # reported once while nothing could delete it (no event being processed)
    _, key, value, headers = sent[0]
    context = parse_dead_letter_headers(headers)
    assert (key, value) == (b"5", b"\x01" * 15)
    assert (context.reason, context.source_topic, context.source_partition, context.source_offset) == (
        "corrupt_state", "app-served-history-changelog", partition_for_id(5, 4), -1
    )
    assert metrics.table_corrupt_values.labels("served-history")._value.get() == before + 1
    assert 5 not in table
    history.record(5, [9], NOW)  # the next write replaces it
    assert history.served_ids(5, now_ms=NOW) == {9}
    assert len(sent) == 1


def _changelog_event(app: faust.App, partition: int, offset: int, key: bytes, value: bytes | None) -> EventT:
    message = Message(f"{app.conf.id}-answered-requests-changelog", partition, offset, 0.0, 0, None, key, value, None)
    return app.create_event(key, value, None, message)


def test_a_replayed_answered_value_is_merged_into_the_held_one_in_real_rocksdb(tmp_path: Path) -> None:
    """Recovery replaying an older answered-requests record over a newer held value (a rejoin after a
    broker pause) keeps every id; a table without `merge_value` takes the changelog's value as it is."""
    app = faust.App("merge-test", broker="kafka://127.0.0.1:1", store="rocksdb://", datadir=str(tmp_path))
    letters = DeadLetters(lambda *args: None)
    merged = guarded_table(app, "answered-requests", partitions=1, check_value=check_answered_value,
                           dead_letters=letters, merge_value=merge_answered)
    plain = guarded_table(app, "plain", partitions=1, check_value=check_answered_value, dead_letters=letters)
    for table in (merged, plain):
        db = table.data._db_for_partition(0)
        db.put(b"42", orjson.dumps(["r1", "r2", "r3"]))  # held: newer than the changelog below
        table.apply_changelog_batch([
            _changelog_event(app, 0, 7, b"42", orjson.dumps(["r1"])),
            _changelog_event(app, 0, 8, b"43", orjson.dumps(["s1"])),  # nothing held: taken as it is
            _changelog_event(app, 0, 9, b"42", orjson.dumps(["r1", "r2"])),
        ])
    assert orjson.loads(merged.data._db_for_partition(0).get(b"42")) == ["r1", "r2", "r3"]
    assert orjson.loads(merged.data._db_for_partition(0).get(b"43")) == ["s1"]
    assert orjson.loads(plain.data._db_for_partition(0).get(b"42")) == ["r1", "r2"]


def test_merged_answered_ids_keep_both_sides_and_at_most_the_remembered_number() -> None:
    assert orjson.loads(merge_answered(orjson.dumps(["a", "b", "c"]), orjson.dumps(["a", "b"]))) == ["a", "b", "c"]
    assert orjson.loads(merge_answered(orjson.dumps(["a"]), orjson.dumps(["a", "b"]))) == ["a", "b"]
    many = [f"r{i}" for i in range(REMEMBERED_REQUESTS)]
    result = orjson.loads(merge_answered(orjson.dumps([*many, "new"]), orjson.dumps(many[:10])))
    assert len(result) == REMEMBERED_REQUESTS and result[-1] == "new"
