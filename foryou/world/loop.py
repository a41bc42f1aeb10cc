"""The closed loop over Kafka: simulated users ask a worker for feeds, read them and act, and what they do
shapes their next feeds.

Each round picks a batch of users (`pick_users`: users paging down their session first, then others drawn
by activity), sends all their `feed-requests`, waits for every answer on `ranked-feeds`, then lets each user
read their feed (`ClientBehaviour.react` at world time `shift.to_world(now)`) and produces the engagement
events and follows/blocks/mutes drawn by the ground truth to `engagement-events` and
`social-graph-events`, stamped in wall time. The worker folds them into the user's history and graph
before it answers that user's next request.

The loop compresses time: a user reads a feed at once in wall time (their own clock, which dates their
events, runs on by the dwell and glance times) and the next session is the next time the user is drawn,
not hours later as `UserState.next_request_ms` would have it. Everything is recorded in `OnlineMetrics`
at world time: served feeds with the worker's latency (`latency_ms` of the answer: from the worker reading
the request to sending the answer), and each engagement against the feed that served the post.
"""

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from foryou.world.client import ClientBehaviour, UserState, feed_post_ids
from foryou.world.kafka_io import AnswerReader, EventProducer
from foryou.world.metrics import OnlineMetrics, describe_feed
from foryou.world.offline import Impression
from foryou.world.replay import TimeShift, rebase_value
from foryou.world.truth import ENGAGEMENT_ACTIONS
from foryou.world.wire import ENGAGEMENT_EVENTS, FEED_REQUESTS, SOCIAL_GRAPH_EVENTS, WireValue, wire_key
from foryou.world.world import World


@dataclass(frozen=True)
class LoopConfig:
    batch_size: int = 24  # requests in flight per round
    duration_s: float = 60.0
    answer_timeout_s: float = 30.0
    max_results: int = 20
    seed: int = 0


def pick_users(
    rng: np.random.Generator, states: Mapping[int, UserState], activity: np.ndarray, batch_size: int
) -> list[int]:
    """Users for the next round: those in the middle of a session (paging down) first, then others drawn
    without replacement with probability proportional to `activity` (indexed by user id - 1)."""
    paging = sorted(user for user, state in states.items() if state.is_bottom_request)[:batch_size]
    others = np.array(sorted(user for user, state in states.items() if not state.is_bottom_request), dtype=np.int64)
    wanted = min(batch_size - len(paging), others.size)
    if wanted <= 0:
        return paging
    weights = activity[others - 1].astype(np.float64)
    drawn = rng.choice(others, size=wanted, replace=False, p=weights / weights.sum())
    return paging + [int(user) for user in drawn]


@dataclass
class LoopStats:
    rounds: int = 0
    requests: int = 0
    answered: int = 0
    errors: int = 0
    timeouts: int = 0
    impressions: int = 0  # posts served
    viewed: int = 0  # posts examined by the users
    engagements: int = 0  # explicit positive engagements (metrics.ENGAGEMENT_ACTIONS)
    negatives: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # the worker's, per answer
    round_trip_ms: list[float] = field(default_factory=list)  # client's: round start to answer read
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        """The live progress line."""
        latencies = np.asarray(self.latencies_ms[-500:])
        p50 = f"{np.percentile(latencies, 50):.0f}" if latencies.size else "-"
        p95 = f"{np.percentile(latencies, 95):.0f}" if latencies.size else "-"
        trips = np.asarray(self.round_trip_ms[-500:])
        trip = f"{np.percentile(trips, 50):.0f}" if trips.size else "-"
        rate = self.engagements / self.impressions if self.impressions else 0.0
        return (
            f"{time.monotonic() - self.started:5.0f}s  answered {self.answered}/{self.requests}"
            f" (errors {self.errors}, timeouts {self.timeouts})  worker latency p50 {p50} ms p95 {p95} ms"
            f"  round trip p50 {trip} ms"
            f"  engagements/impression {rate:.3f}"
        )


@dataclass
class LoopResult:
    states: dict[int, UserState]
    stats: LoopStats
    impressions: list[Impression] = field(default_factory=list)  # examined posts, at world time
    engagements: list[WireValue] = field(default_factory=list)  # as simulated, at world time
    social_graph_events: list[WireValue] = field(default_factory=list)
    last_answer: dict | None = None


class ClosedLoop:
    def __init__(
        self,
        *,
        world: World,
        behaviour: ClientBehaviour,
        answers: AnswerReader,
        producer: EventProducer,
        shift: TimeShift,
        metrics: OnlineMetrics,
        policy: str,
        config: LoopConfig | None = None,
    ) -> None:
        self.world = world
        self.behaviour = behaviour
        self.answers = answers
        self.producer = producer
        self.shift = shift
        self.metrics = metrics
        self.policy = policy
        self.config = config or LoopConfig()
        self._run_id = uuid.uuid4().hex[:8]

    def now_world_ms(self) -> int:
        return self.shift.to_world(time.time() * 1000)

    def run(
        self, states: Mapping[int, UserState], on_round: Callable[[LoopStats], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> LoopResult:
        """Rounds until `duration_s` has passed (or `should_stop` says so); `states` is not modified."""
        rng = np.random.default_rng(self.config.seed)
        result = LoopResult(states=dict(states), stats=LoopStats())
        deadline = time.monotonic() + self.config.duration_s
        while time.monotonic() < deadline and not (should_stop and should_stop()):
            self.run_round(rng, result)
            if on_round is not None:
                on_round(result.stats)
        return result

    def run_round(self, rng: np.random.Generator, result: LoopResult) -> None:
        stats = result.stats
        users = pick_users(rng, result.states, self.world.population.activity, self.config.batch_size)
        request_ids = {}
        sent_at = time.time()
        for user_id in users:
            request_id = f"{self.policy}-{self._run_id}-{stats.rounds}-{user_id}"
            value = self.behaviour.feed_request(result.states[user_id], request_id, self.config.max_results)
            self.producer.send(FEED_REQUESTS, wire_key(user_id), value)
            request_ids[user_id] = request_id
        self.producer.flush()
        stats.requests += len(users)
        stats.rounds += 1
        received = self.answers.collect(request_ids.values(), self.config.answer_timeout_s)
        stats.timeouts += len(request_ids) - len(received)
        answers = {user_id: received[rid] for user_id, rid in request_ids.items() if rid in received}
        for answer in answers.values():
            stats.round_trip_ms.append((answer["received_at"] - sent_at) * 1000)
        for user_id in users:
            answer = answers.get(user_id)
            state = result.states[user_id]
            if answer is None or answer["status"] != "ok":
                stats.errors += answer is not None
                # The session ends: the next time this user is drawn they open a fresh feed.
                result.states[user_id] = replace(state, is_bottom_request=False, served_ids=())
                continue
            stats.answered += 1
            stats.latencies_ms.append(float(answer["latency_ms"]))
            result.last_answer = answer
            self._read_feed(rng, result, state, answer)
        self.producer.flush()

    def _read_feed(self, rng: np.random.Generator, result: LoopResult, state: UserState, answer: dict) -> None:
        stats, user_id = result.stats, state.user_id
        feed = feed_post_ids(answer)
        now = self.now_world_ms()
        served = describe_feed(self.world, user_id, feed, now, state.followed)
        self.metrics.record_served(self.policy, user_id, now, served, float(answer["latency_ms"]))
        stats.impressions += len(served)
        reaction = self.behaviour.react(rng, state, feed, now)
        result.states[user_id] = reaction.state
        stats.viewed += len(reaction.viewed)
        result.impressions.extend(
            Impression(user_id, v.post_id, v.author_id, v.ts_ms, answer["request_id"]) for v in reaction.viewed
        )
        for event in reaction.engagement_events:
            self.metrics.record_engagement_event(event)
            stats.engagements += event["action"] in ENGAGEMENT_ACTIONS
            stats.negatives += event["action"] in ("not_interested", "block_author", "mute_author", "report")
            self.producer.send(ENGAGEMENT_EVENTS, wire_key(user_id), rebase_value(event, self.shift))
        for event in reaction.social_graph_events:
            self.producer.send(SOCIAL_GRAPH_EVENTS, wire_key(user_id), rebase_value(event, self.shift))
        result.engagements.extend(reaction.engagement_events)
        result.social_graph_events.extend(reaction.social_graph_events)
