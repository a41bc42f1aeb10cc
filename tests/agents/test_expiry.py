"""Idle users: which table values count as expired, and the store operations that drop them."""

from agents.envelope import decode_user_event, encode_user_event
from agents.expiry import expired_users, forget_answered, users_without_state
from stores import action_sequences, served_history
from stores.action_sequences import UserActionSequences
from stores.served_history import ServedHistory

NOW = 1_700_000_000_000
DAY = 86_400_000


def engage(actions: UserActionSequences, user_id: int, post_id: int, ts_ms: int) -> None:
    actions.record({"user_id": user_id, "post_id": post_id, "author_id": 9, "action": "favorite",
                    "surface": "home", "ts_ms": ts_ms, "dwell_ms": None})


def test_an_engagement_sequence_expires_by_its_newest_engagement() -> None:
    table: dict[int, bytes] = {}
    actions = UserActionSequences(table)
    engage(actions, 1, 10, NOW - 40 * DAY)
    engage(actions, 1, 11, NOW - 5 * DAY)  # newest: not idle for 30 days
    engage(actions, 2, 12, NOW - 31 * DAY)
    assert not action_sequences.is_idle(table[1], NOW, 30 * DAY)
    assert action_sequences.is_idle(table[2], NOW, 30 * DAY)
    assert expired_users(table.items(), lambda v: action_sequences.is_idle(v, NOW, 30 * DAY)) == [2]
    assert not actions.expire_if_idle(1, NOW, 30 * DAY) and actions.expire_if_idle(2, NOW, 30 * DAY)
    assert set(table) == {1}
    assert not actions.expire_if_idle(3, NOW, 30 * DAY)  # nothing stored


def test_a_served_history_expires_once_no_id_in_it_counts() -> None:
    table: dict[int, bytes] = {}
    served = ServedHistory(table)
    served.record(1, [5, 6], NOW - 3 * DAY)
    served.record(1, [7], NOW - DAY)
    served.record(2, [8], NOW - 3 * DAY)
    assert expired_users(table.items(), lambda v: served_history.is_stale(v, NOW)) == [2]
    assert not served.expire_if_stale(1, NOW) and served.expire_if_stale(2, NOW)
    assert set(table) == {1} and served.served_ids(1, now_ms=NOW) == {7}


def test_a_sweep_sends_at_most_its_limit_and_skips_keys_that_are_not_user_ids() -> None:
    items = [(1, b"x"), ("2", b"x"), (3, None), (4, b"x"), (5, b"x")]
    assert expired_users(items, lambda value: True, limit=2) == [1, 4]


def test_the_expire_envelope_round_trips_and_is_checked() -> None:
    decoded = decode_user_event(encode_user_event("expire", {"v": 1, "user_id": 42}, 1.0))
    assert (decoded.kind, decoded.event) == ("expire", {"v": 1, "user_id": 42})
    for bad in ({"v": 1}, {"v": 1, "user_id": "42"}, {"v": 1, "user_id": 0}):
        try:
            decode_user_event(encode_user_event("expire", bad, 1.0))
        except ValueError as error:
            assert getattr(error, "reason", None) == "wrong_type"
        else:
            raise AssertionError(f"accepted {bad}")


def test_answered_ids_go_only_once_the_user_holds_nothing_else() -> None:
    answered = {1: b'["r1"]', 2: b'["r2"]'}
    holds_state = {1: True, 2: False}.__getitem__
    assert not forget_answered(1, answered, holds_state)  # still engaged or served: a redelivery may come
    assert forget_answered(2, answered, holds_state)
    assert not forget_answered(3, answered, lambda user_id: False)  # nothing stored
    assert answered == {1: b'["r1"]'}


def test_the_sweep_finds_answered_users_with_no_other_state_up_to_its_limit() -> None:
    keys = [1, "2", 3, 4, 5, 6]
    with_state = {3, 5}
    assert users_without_state(keys, with_state.__contains__) == [1, 4, 6]
    assert users_without_state(keys, with_state.__contains__, limit=2) == [1, 4]
