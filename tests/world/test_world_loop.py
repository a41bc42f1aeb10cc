"""The closed loop's pure parts: who asks next, and one round against fake Kafka ends."""

import numpy as np
import pytest

from foryou.world.client import ClientBehaviour, UserState
from foryou.world.config import HOUR_MS, preset
from foryou.world.history import state_from_json, state_to_json
from foryou.world.loop import ClosedLoop, LoopConfig, LoopResult, LoopStats, pick_users
from foryou.world.metrics import OnlineMetrics
from foryou.world.replay import TimeShift
from foryou.world.wire import ENGAGEMENT_EVENTS, FEED_REQUESTS, SOCIAL_GRAPH_EVENTS
from foryou.world.world import World


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(preset("tiny", seed=5, num_users=60, num_posts=900))


def _states(user_ids: list[int], paging: set[int] = frozenset()) -> dict[int, UserState]:
    return {u: UserState(user_id=u, next_request_ms=0, is_bottom_request=u in paging) for u in user_ids}


def test_paging_users_come_first_then_distinct_users_by_activity() -> None:
    states = _states(list(range(1, 11)), paging={4, 9})
    activity = np.ones(10)
    activity[[0, 1]] = 0.0  # users 1 and 2 never open the app
    picked = pick_users(np.random.default_rng(0), states, activity, 6)
    assert picked[:2] == [4, 9]
    assert len(picked) == len(set(picked)) == 6
    assert not {1, 2} & set(picked)


def test_pick_users_is_bounded_by_the_population() -> None:
    states = _states([1, 2, 3], paging={2})
    assert sorted(pick_users(np.random.default_rng(1), states, np.ones(3), 10)) == [1, 2, 3]


def test_user_state_survives_json() -> None:
    state = UserState(user_id=7, next_request_ms=123, is_bottom_request=True, served_ids=(5, 6), seen_ids=(4,),
                      followed=frozenset({9}), blocked=frozenset({3}), muted=frozenset(),
                      engagements={9: 2, 11: 1}, requests=4)
    assert state_from_json(state_to_json(state)) == state


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict]] = []

    def send(self, topic: str, key: bytes, value: dict) -> None:
        self.sent.append((topic, key, value))

    def flush(self) -> None:
        pass


class FakeAnswers:
    """Answers every request sent so far with the newest live posts, like a reverse-chron worker would."""

    def __init__(self, world: World, producer: FakeProducer, now_world_ms: int) -> None:
        self.world, self.producer, self.now = world, producer, now_world_ms

    def collect(self, request_ids: object, timeout_s: float = 30.0) -> dict[str, dict]:
        live = np.flatnonzero((self.world.posts.created_ms <= self.now) & (self.world.posts.deleted_ms > self.now))
        newest = self.world.post_ids()[live][::-1][:20]
        answers = {}
        for topic, _, request in self.producer.sent:
            if topic != FEED_REQUESTS:
                continue
            posts = [{"post_id": int(p), "author_id": int(self.world.author_ids(np.array([p]))[0]), "rank": r + 1,
                      "score": 1.0, "in_network": False} for r, p in enumerate(newest)]
            answers[request["request_id"]] = {"v": 1, "request_id": request["request_id"],
                                              "user_id": request["user_id"], "status": "ok", "error": None,
                                              "posts": posts, "model": "fake", "latency_ms": 3.0,
                                              "received_at": 0.0}
        return answers


def test_a_round_reads_feeds_and_sends_rebased_engagements(world: World) -> None:
    end = world.config.end_ms
    shift = TimeShift(5 * HOUR_MS)
    producer = FakeProducer()
    metrics = OnlineMetrics(window_ms=HOUR_MS, origin_ms=end)
    loop = ClosedLoop(world=world, behaviour=ClientBehaviour(world), answers=FakeAnswers(world, producer, end),
                      producer=producer, shift=shift, metrics=metrics, policy="fake",
                      config=LoopConfig(batch_size=40))
    loop.now_world_ms = lambda: end  # type: ignore[method-assign]  # a fixed clock
    result = LoopResult(states=_states([int(u) for u in world.user_ids()]), stats=LoopStats())
    loop.run_round(np.random.default_rng(0), result)

    requests = [value for topic, _, value in producer.sent if topic == FEED_REQUESTS]
    engagements = [value for topic, _, value in producer.sent if topic == ENGAGEMENT_EVENTS]
    assert len(requests) == result.stats.requests == result.stats.answered == 40
    assert engagements and len(engagements) == len(result.engagements)
    for sent, simulated in zip(engagements, result.engagements, strict=True):
        assert sent["ts_ms"] == simulated["ts_ms"] + shift.offset_ms
        assert sent["post_id"] == simulated["post_id"]
    assert all(key == str(value["user_id"]).encode() for _, key, value in producer.sent)
    social = [value for topic, _, value in producer.sent if topic == SOCIAL_GRAPH_EVENTS]
    assert len(social) == len(result.social_graph_events)
    total = metrics.total("fake")
    assert total.requests == 40 and total.impressions == 40 * 20
    assert metrics.unattributed == 0
    assert total.engagements == result.stats.engagements > 0
    assert all(state.requests == 1 for u, state in result.states.items() if u in {r["user_id"] for r in requests})


def test_failed_answers_end_the_session(world: World) -> None:
    class NoAnswers:
        def collect(self, request_ids: object, timeout_s: float = 30.0) -> dict:
            return {}

    producer = FakeProducer()
    loop = ClosedLoop(world=world, behaviour=ClientBehaviour(world), answers=NoAnswers(), producer=producer,
                      shift=TimeShift(0), metrics=OnlineMetrics(), policy="none", config=LoopConfig(batch_size=3))
    states = _states([1, 2, 3], paging={2})
    result = LoopResult(states=states, stats=LoopStats())
    loop.run_round(np.random.default_rng(0), result)
    assert result.stats.timeouts == 3 and result.stats.answered == 0
    assert not any(state.is_bottom_request for state in result.states.values())
    assert "answered 0/3" in result.stats.line()
