"""Simulated clients: how a user reads a served feed, what they do, and when they ask for the next one.

Examination (cascade) model: the user always looks at the first post, and after the post at rank i goes on
with probability max(continue_min, continue_base · continue_decay^i), halved (negative_stop_factor) right
after a negative action. On each examined post the actions are drawn independently from the ground truth
(truth.py) at the serving time; a dwell lasts a log-logistic time, and dwell_time fires when it reaches
LONG_DWELL_MS. A block or mute cancels a follow_author drawn with it, and hides the author's later posts in
the same feed. Time advances by the dwell (or a short glance) per examined post.

After a feed: if the user read to its end, they ask for the next page (is_bottom_request, a second or two
later) with probability page_probability; otherwise their next session starts after Exp(mean_gap_ms /
activity). `react` is a pure function of (rng, state, feed, now): the lead drives it from an asyncio loop.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from foryou.world.config import HOUR_MS
from foryou.world.truth import ENGAGEMENT_ACTIONS, LONG_DWELL_MS, GroundTruth, sample_dwell_ms
from foryou.world.wire import WireValue, engagement_value, social_value
from foryou.world.world import Relation, World
from topics.actions import ACTION_INDEX, ACTIONS, NEGATIVE_ACTIONS, NUM_ACTIONS
from topics.schemas import FeedRequest

_DWELL, _DWELL_TIME = ACTION_INDEX["dwell"], ACTION_INDEX["dwell_time"]
_NOT_DWELLED, _CLICK_DWELL_TIME = ACTION_INDEX["not_dwelled"], ACTION_INDEX["click_dwell_time"]
_CLICK = ACTION_INDEX["click"]
# dwell_time, not_dwelled and click_dwell_time are not drawn on their own: they follow from the drawn dwell
# (its duration, or its absence) and the drawn click.
_DRAWN = np.array([i for i in range(NUM_ACTIONS) if i not in (_DWELL_TIME, _NOT_DWELLED, _CLICK_DWELL_TIME)])
_TIMED = {"dwell", "dwell_time"}


def feed_post_ids(ranked_feed: Mapping[str, Any]) -> list[int]:
    """The post ids of a ranked-feeds value in rank order (none when its status is not "ok")."""
    if ranked_feed.get("status") != "ok":
        return []
    return [post["post_id"] for post in sorted(ranked_feed["posts"], key=lambda post: post["rank"])]


def _member(values: np.ndarray, members: frozenset[int]) -> np.ndarray:
    if not members:
        return np.zeros(values.shape, dtype=bool)
    return np.isin(values, np.fromiter(members, dtype=np.int64, count=len(members)))


@dataclass(frozen=True)
class ClientConfig:
    continue_base: float = 0.97
    continue_decay: float = 0.98
    continue_min: float = 0.6
    negative_stop_factor: float = 0.5
    page_probability: float = 0.5
    mean_gap_ms: int = 3 * HOUR_MS
    glance_ms: tuple[int, int] = (600, 2_500)
    page_delay_ms: tuple[int, int] = (300, 3_000)
    seen_memory: int = 500
    max_results: int = 20


@dataclass(frozen=True)
class UserState:
    """What a simulated user carries between feeds (never mutated: `react` returns a new one)."""

    user_id: int
    next_request_ms: int
    is_bottom_request: bool = False
    served_ids: tuple[int, ...] = ()  # earlier pages of the current session
    seen_ids: tuple[int, ...] = ()  # recently examined posts, oldest first
    followed: frozenset[int] = frozenset()  # authors followed while simulated (on top of the world's graph)
    blocked: frozenset[int] = frozenset()
    muted: frozenset[int] = frozenset()
    engagements: Mapping[int, int] = field(default_factory=dict)  # author id -> posts positively engaged
    requests: int = 0


@dataclass(frozen=True)
class Viewed:
    """An examined post: the user saw it and took `actions` (possibly none)."""

    post_id: int
    author_id: int
    rank: int
    ts_ms: int
    actions: tuple[str, ...]
    dwell_ms: int | None


@dataclass(frozen=True)
class Reaction:
    state: UserState
    viewed: tuple[Viewed, ...]
    engagement_events: tuple[WireValue, ...]
    social_graph_events: tuple[WireValue, ...]


class ClientBehaviour:
    def __init__(self, world: World, truth: GroundTruth | None = None, config: ClientConfig | None = None) -> None:
        self.world = world
        self.truth = truth or GroundTruth(world)
        self.config = config or ClientConfig()

    def session_gap_ms(self, rng: np.random.Generator, user_id: int) -> int:
        activity = float(self.world.population.activity[self.world.user_index(user_id)])
        return int(rng.exponential(self.config.mean_gap_ms / activity)) + 1

    def initial_state(self, rng: np.random.Generator, user_id: int, now_ms: int) -> UserState:
        return UserState(user_id=user_id, next_request_ms=now_ms + self.session_gap_ms(rng, user_id))

    def relation(self, state: UserState, author_ids: np.ndarray, now_ms: int) -> Relation:
        """The world's relations of the user to these authors, with the user's own actions applied."""
        authors = np.asarray(author_ids, dtype=np.int64)
        base = self.world.relation(np.full(authors.shape, state.user_id, dtype=np.int64), authors, now_ms)
        engagements = np.zeros(authors.shape, dtype=np.int64)
        if state.engagements:
            engaged = np.fromiter(state.engagements, dtype=np.int64, count=len(state.engagements))
            counts = np.fromiter(state.engagements.values(), dtype=np.int64, count=len(state.engagements))
            order = np.argsort(engaged)
            engaged, counts = engaged[order], counts[order]
            position = np.minimum(np.searchsorted(engaged, authors), engaged.size - 1)
            engagements = np.where(engaged[position] == authors, counts[position], 0)
        return Relation(
            following=base.following | _member(authors, state.followed),
            engagements=engagements,
            blocked=base.blocked | _member(authors, state.blocked | state.muted),
        )

    def feed_request(self, state: UserState, request_id: str, max_results: int | None = None) -> WireValue:
        """The feed-requests value for the user's next request."""
        return FeedRequest(
            request_id=request_id,
            user_id=state.user_id,
            max_results=max_results or self.config.max_results,
            seen_ids=tuple(state.seen_ids),
            served_ids=tuple(state.served_ids) if state.is_bottom_request else (),
            is_bottom_request=state.is_bottom_request,
            language="en",
        ).to_dict()

    def react(self, rng: np.random.Generator, state: UserState, feed: Sequence[int], now_ms: int) -> Reaction:
        """Walk down `feed` (post ids in rank order, served at now_ms) and decide the next request."""
        config = self.config
        index = self.world.post_index(np.asarray(feed, dtype=np.int64), strict=False)
        known = np.flatnonzero(index >= 0)
        post_ids = np.asarray(feed, dtype=np.int64)[known]
        authors = self.world.posts.author[index[known]] + 1
        user_ids = np.full(known.size, state.user_id, dtype=np.int64)
        assessment = self.truth.assess(user_ids, post_ids, now_ms, self.relation(state, authors, now_ms))

        followed, blocked, muted = set(state.followed), set(state.blocked), set(state.muted)
        engagements = dict(state.engagements)
        viewed: list[Viewed] = []
        engagement_events: list[WireValue] = []
        social_events: list[WireValue] = []
        clock = now_ms
        stopped = False
        for j, rank in enumerate(known.tolist()):
            probabilities = assessment.probabilities[j]
            author = int(authors[j])
            if not assessment.visible[j] or author in blocked or author in muted:
                continue  # deleted, own or hidden posts are not shown
            drawn = np.zeros(NUM_ACTIONS, dtype=bool)
            drawn[_DRAWN] = rng.random(_DRAWN.size) < probabilities[_DRAWN]
            dwell_ms = int(sample_dwell_ms(rng, assessment.dwell_scale_ms[j])) if drawn[_DWELL] else None
            drawn[_DWELL_TIME] = dwell_ms is not None and dwell_ms >= LONG_DWELL_MS
            drawn[_NOT_DWELLED] = dwell_ms is None
            click_dwell_ms = int(sample_dwell_ms(rng, assessment.dwell_scale_ms[j])) if drawn[_CLICK] else None
            drawn[_CLICK_DWELL_TIME] = click_dwell_ms is not None
            if drawn[ACTION_INDEX["block_author"]] or drawn[ACTION_INDEX["mute_author"]]:
                drawn[ACTION_INDEX["follow_author"]] = False
            actions = tuple(ACTIONS[i] for i in np.flatnonzero(drawn).tolist())
            clock += dwell_ms if dwell_ms is not None else int(rng.integers(*config.glance_ms))
            post_id = int(post_ids[j])
            viewed.append(Viewed(post_id, author, rank, clock, actions, dwell_ms))
            for action in actions:
                dwell = dwell_ms if action in _TIMED else click_dwell_ms if action == "click_dwell_time" else None
                engagement_events.append(engagement_value(state.user_id, post_id, author, action, clock, dwell))
            social_events.extend(self._relation_changes(state.user_id, author, actions, clock))
            if "follow_author" in actions:
                followed.add(author)
            if "block_author" in actions:
                blocked.add(author)
            if "mute_author" in actions:
                muted.add(author)
            if ENGAGEMENT_ACTIONS.intersection(actions):
                engagements[author] = engagements.get(author, 0) + 1
            go_on = max(config.continue_min, config.continue_base * config.continue_decay**rank)
            if NEGATIVE_ACTIONS.intersection(actions):
                go_on *= config.negative_stop_factor
            if rng.random() >= go_on:
                stopped = True
                break

        next_page = bool(len(feed)) and not stopped and rng.random() < config.page_probability
        if next_page:
            next_request_ms = clock + int(rng.integers(*config.page_delay_ms))
        else:
            next_request_ms = clock + self.session_gap_ms(rng, state.user_id)
        seen = (*state.seen_ids, *(v.post_id for v in viewed))[-config.seen_memory :]
        new_state = replace(
            state,
            next_request_ms=next_request_ms,
            is_bottom_request=next_page,
            served_ids=(*state.served_ids, *(int(p) for p in feed)) if next_page else (),
            seen_ids=seen,
            followed=frozenset(followed),
            blocked=frozenset(blocked),
            muted=frozenset(muted),
            engagements=engagements,
            requests=state.requests + 1,
        )
        return Reaction(new_state, tuple(viewed), tuple(engagement_events), tuple(social_events))

    @staticmethod
    def _relation_changes(user_id: int, author_id: int, actions: tuple[str, ...], ts_ms: int) -> list[WireValue]:
        kinds = {"follow_author": "follow", "block_author": "block", "mute_author": "mute"}
        return [social_value(kinds[a], user_id, ts_ms, target_id=author_id) for a in actions if a in kinds]
