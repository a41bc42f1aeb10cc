"""The write-back cache: reads see pending writes, each key is written once per batch, and applying the
batches' writes gives exactly the state that per-event writes give."""

import random

import pytest

from stores.action_sequences import UserActionSequences
from stores.social_graph import SocialGraph
from stores.write_back import WriteBackCache
from topics.actions import PHOENIX_ACTIONS


def test_reads_see_pending_values_and_deletions_until_taken() -> None:
    table = {1: b"old", 2: b"two"}
    cache = WriteBackCache(table.get)
    cache[1] = b"new"
    del cache[2]
    assert (cache.get(1), cache.get(2), 2 in cache, cache.get(3, b"default")) == (b"new", None, False, b"default")
    assert table == {1: b"old", 2: b"two"}  # nothing written through yet
    with pytest.raises(KeyError):
        del cache[2]  # already deleted
    assert cache.take_pending() == {1: b"new", 2: None}
    assert cache.take_pending() == {}
    assert cache.get(1) == b"old"  # reads go to the table again (the caller writes the taken values there)


def test_each_key_keeps_only_its_last_value() -> None:
    cache = WriteBackCache({}.get)
    for value in (b"a", b"b", b"c"):
        cache[7] = value
    cache[8] = b"x"
    del cache[8]
    assert cache.take_pending() == {7: b"c", 8: None}


def test_values_must_be_bytes() -> None:
    with pytest.raises(TypeError):
        WriteBackCache({}.get)[1] = "text"  # type: ignore[assignment]


def _events(rng: random.Random, count: int) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []
    for i in range(count):
        user = rng.randint(1, 6)
        if rng.random() < 0.7:
            post = rng.randint(1, 40)
            events.append(("engagement", {
                "user_id": user, "post_id": post, "author_id": post % 7 + 1, "action": rng.choice(PHOENIX_ACTIONS),
                "surface": "home_for_you", "ts_ms": 1_000 + rng.randint(0, i + 1), "dwell_ms": rng.choice([None, 5]),
            }))
        else:
            kind = rng.choice(["follow", "unfollow", "block", "unblock", "mute", "unmute"])
            events.append(("social", {"type": kind, "user_id": user, "target_id": rng.randint(1, 8)}))
    return events


def _apply(kind: str, event: dict, actions: UserActionSequences, graph: SocialGraph) -> None:
    if kind == "engagement":
        actions.record(event)
    else:
        graph.apply(event)


@pytest.mark.parametrize("seed", range(20))
def test_batched_writes_give_the_per_event_state(seed: int) -> None:
    rng = random.Random(seed)
    events = _events(rng, 400)
    oracle_actions: dict[int, bytes] = {}
    oracle_graph: dict[int, bytes] = {}
    per_event = (UserActionSequences(oracle_actions, max_len=16), SocialGraph(oracle_graph, max_following=5))
    for kind, event in events:
        _apply(kind, event, *per_event)

    actions_table: dict[int, bytes] = {}
    graph_table: dict[int, bytes] = {}
    caches = WriteBackCache(actions_table.get), WriteBackCache(graph_table.get)
    batched = UserActionSequences(caches[0], max_len=16), SocialGraph(caches[1], max_following=5)
    writes = 0
    position = 0
    while position < len(events):
        size = rng.randint(1, 60)
        for kind, event in events[position : position + size]:
            _apply(kind, event, *batched)
        position += size
        for cache, table in zip(caches, (actions_table, graph_table), strict=True):
            pending = cache.take_pending()
            writes += len(pending)
            for user_id, value in pending.items():
                if value is None:
                    table.pop(user_id, None)
                else:
                    table[user_id] = value
    assert (actions_table, graph_table) == (oracle_actions, oracle_graph)
    assert writes < len(events)  # coalesced: at most one write per user and table per batch
