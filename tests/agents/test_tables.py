"""User-table values that come back undecodable are explained, not fatal: dead-lettered, counted, reset."""

import time

import orjson
import pytest

from agents import metrics
from agents.dead_letters import DeadLetters
from agents.tables import CheckedTable, _changelog_problem, check_answered_value
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
