import itertools
import random

import pytest

from stores.action_sequences import UserActionSequences
from stores.records import ActionEntry
from topics.actions import PHOENIX_ACTIONS, actions_to_mask

USER = 42


def engagement(
    post_id: int,
    action: str,
    ts_ms: int,
    *,
    author_id: int = 7,
    surface: str = "home_for_you",
    dwell_ms: int | None = None,
    user_id: int = USER,
) -> dict:
    return {
        "v": 1,
        "user_id": user_id,
        "post_id": post_id,
        "author_id": author_id,
        "action": action,
        "surface": surface,
        "ts_ms": ts_ms,
        "dwell_ms": dwell_ms,
    }


@pytest.fixture
def table() -> dict[int, bytes]:
    return {}


@pytest.fixture
def sequences(table: dict[int, bytes]) -> UserActionSequences:
    return UserActionSequences(table)


def post_ids(sequences: UserActionSequences, user_id: int = USER) -> list[int]:
    return [entry.post_id for entry in sequences.get(user_id)]


def test_actions_on_one_post_merge_into_one_entry(sequences: UserActionSequences) -> None:
    assert sequences.record(engagement(1, "click", 100, surface="search", dwell_ms=500))
    assert sequences.record(engagement(1, "favorite", 200, surface="profile", dwell_ms=300))
    assert sequences.get(USER) == [
        ActionEntry(
            post_id=1,
            author_id=7,
            action_mask=actions_to_mask(["click", "favorite"]),
            surface="profile",
            ts_ms=200,
            dwell_ms=500,
        )
    ]


def test_a_new_action_moves_the_post_to_the_newest_position(sequences: UserActionSequences) -> None:
    for post_id, ts in [(1, 100), (2, 200), (3, 300)]:
        sequences.record(engagement(post_id, "click", ts))
    sequences.record(engagement(1, "reply", 400))
    assert post_ids(sequences) == [2, 3, 1]
    assert sequences.get(USER)[-1].action_mask == actions_to_mask(["click", "reply"])


def test_out_of_order_events_are_placed_by_time(sequences: UserActionSequences) -> None:
    for post_id, ts in [(3, 300), (1, 100), (2, 200)]:
        sequences.record(engagement(post_id, "favorite", ts))
    assert post_ids(sequences) == [1, 2, 3]


def test_a_late_action_on_a_known_post_keeps_its_time_place_and_surface(sequences: UserActionSequences) -> None:
    sequences.record(engagement(1, "click", 100))
    sequences.record(engagement(2, "click", 300, surface="search"))
    assert sequences.record(engagement(2, "share", 150, surface="profile", dwell_ms=40))
    assert post_ids(sequences) == [1, 2]
    latest = sequences.get(USER)[-1]
    assert (latest.ts_ms, latest.surface, latest.dwell_ms) == (300, "search", 40)
    assert latest.action_mask == actions_to_mask(["click", "share"])


def test_the_sequence_is_bounded_oldest_dropped_first(table: dict[int, bytes]) -> None:
    sequences = UserActionSequences(table)
    for post_id in range(1, 131):
        sequences.record(engagement(post_id, "click", post_id * 10))
    assert post_ids(sequences) == list(range(3, 131))
    assert len(table[USER]) == (1 + 128) * 33  # the entries and the time of the newest one let go
    # A late event older than everything in a full sequence changes nothing.
    assert not sequences.record(engagement(999, "favorite", 5))
    assert post_ids(sequences) == list(range(3, 131))
    # A late event inside the window pushes the oldest out.
    assert sequences.record(engagement(999, "favorite", 45))
    assert post_ids(sequences)[:3] == [4, 999, 5]
    assert len(sequences.get(USER)) == 128


def test_replaying_an_event_changes_nothing(sequences: UserActionSequences, table: dict[int, bytes]) -> None:
    events = [
        engagement(1, "click", 100, dwell_ms=20),
        engagement(2, "favorite", 200),
        engagement(1, "repost", 300, surface="search"),
    ]
    for event in events:
        sequences.record(event)
    stored = table[USER]
    for event in events:
        assert not sequences.record(event)
    assert table[USER] == stored


def test_replaying_any_stretch_of_a_full_sequences_input_equals_applying_it_once() -> None:
    # At-least-once delivery: after a crash or a seek, input from the last commit is applied again over a
    # state that already holds some of it (events[:applied] + events[replayed_from:]). A post let go from a
    # full sequence and engaged with again later must not take the replayed earlier action's bit back.
    for seed in range(60):
        rng = random.Random(seed)
        events = [
            engagement(rng.randint(1, 20), rng.choice(PHOENIX_ACTIONS[:5]), 1_000 + i,
                       dwell_ms=rng.choice([None, 10, 1_500]))
            for i in range(50)
        ]
        once: dict[int, bytes] = {}
        for event in events:
            UserActionSequences(once, max_len=8).record(event)
        for applied in range(0, len(events) + 1, 3):
            for replayed_from in range(applied + 1):
                table: dict[int, bytes] = {}
                sequences = UserActionSequences(table, max_len=8)
                for event in events[:applied] + events[replayed_from:]:
                    sequences.record(event)
                assert table == once, (seed, applied, replayed_from)


def test_an_event_no_newer_than_what_a_full_sequence_let_go_changes_nothing(table: dict[int, bytes]) -> None:
    sequences = UserActionSequences(table, max_len=2)
    sequences.record(engagement(1, "click", 100))
    sequences.record(engagement(2, "click", 200))
    sequences.record(engagement(3, "click", 300))  # post 1 (at 100) goes
    assert post_ids(sequences) == [2, 3]
    assert not sequences.record(engagement(2, "favorite", 100))
    assert sequences.record(engagement(2, "favorite", 101))
    assert sequences.get(USER)[0].action_mask == actions_to_mask(["click", "favorite"])


def test_a_full_sequence_depends_on_arrival_order() -> None:
    # Why a user's events must keep their order on the wire (idempotent producers, foryou/client.py).
    def final(order: list[dict]) -> list[ActionEntry]:
        sequences = UserActionSequences({}, max_len=2)
        for event in [engagement(1, "dwell", 100), engagement(2, "click", 200), *order]:
            sequences.record(event)
        return sequences.get(USER)

    in_order = final([engagement(1, "favorite", 300), engagement(3, "click", 400)])
    swapped = final([engagement(3, "click", 400), engagement(1, "favorite", 300)])
    assert [entry.post_id for entry in in_order] == [entry.post_id for entry in swapped] == [1, 3]
    assert in_order[0].action_mask == actions_to_mask(["dwell", "favorite"])
    assert swapped[0].action_mask == actions_to_mask(["favorite"])  # post 1 went before its favorite came


def test_final_state_does_not_depend_on_arrival_order() -> None:
    events = [
        engagement(1, "click", 100, dwell_ms=20),
        engagement(2, "favorite", 200, surface="search"),
        engagement(1, "repost", 300, surface="profile"),
        engagement(3, "share", 250, dwell_ms=90),
        engagement(2, "dwell", 50, dwell_ms=700),
    ]
    states = set()
    for ordering in itertools.permutations(events):
        table: dict[int, bytes] = {}
        sequences = UserActionSequences(table)
        for event in ordering:
            sequences.record(event)
        states.add(table[USER])
    assert len(states) == 1
    final = UserActionSequences({USER: states.pop()}).get(USER)
    assert [entry.post_id for entry in final] == [2, 3, 1]


def test_users_are_independent_and_unknown_users_are_empty(sequences: UserActionSequences) -> None:
    sequences.record(engagement(1, "click", 100, user_id=1))
    sequences.record(engagement(2, "click", 100, user_id=2))
    assert post_ids(sequences, 1) == [1]
    assert post_ids(sequences, 2) == [2]
    assert sequences.get(3) == []


def test_unknown_surface_becomes_other_and_missing_dwell_stays_none(sequences: UserActionSequences) -> None:
    sequences.record(engagement(1, "click", 100, surface="a_new_surface"))
    entry = sequences.get(USER)[0]
    assert entry.surface == "other"
    assert entry.dwell_ms is None


def test_unknown_action_is_rejected(sequences: UserActionSequences, table: dict[int, bytes]) -> None:
    with pytest.raises(ValueError, match="unknown action"):
        sequences.record(engagement(1, "bookmark", 100))
    assert table == {}


def test_custom_bound(table: dict[int, bytes]) -> None:
    sequences = UserActionSequences(table, max_len=2)
    for post_id in range(1, 5):
        sequences.record(engagement(post_id, "click", post_id))
    assert post_ids(sequences) == [3, 4]


def test_an_optional_action_joins_an_entry_but_never_starts_one() -> None:
    from topics.actions import ACTION_INDEX

    sequences = UserActionSequences({})
    base = {"user_id": 1, "author_id": 9, "surface": "home_for_you", "dwell_ms": None}
    assert not sequences.record({**base, "post_id": 5, "action": "not_dwelled", "ts_ms": 1_000})
    assert sequences.get(1) == []
    assert sequences.record({**base, "post_id": 5, "action": "favorite", "ts_ms": 2_000})
    assert sequences.record({**base, "post_id": 5, "action": "open_link", "ts_ms": 2_000})
    [entry] = sequences.get(1)
    assert entry.action_mask == 1 << ACTION_INDEX["favorite"] | 1 << ACTION_INDEX["open_link"]
