"""Replaying the world into the public topics against the wall clock (pure parts; Kafka I/O is in kafka_io.py).

The world has a fixed start time (2023), but a worker judges posts by the wall clock: it drops a create
older than its post retention (FORYOU_POST_RETENTION_MS, 2 days) at ingest, and the pipeline's age filter
(filters.max_post_age_ms, 48 hours) drops older candidates. So a replay shifts every world timestamp by
one constant: `TimeShift.anchor(world_end_ms, now_ms)` makes the world's end "now". World time and wall
time then differ by that constant for the whole run: the simulated clients judge posts at world time
`shift.to_world(wall_ms)`, and everything they send is stamped `shift.to_wall(world_ms)`.

Posts created more than `window_ms` before the world's end are not replayed (nor their deletes): a worker
would drop them at ingest anyway, and with a window shorter than the retention none is dropped halfway
through a replay. Social-graph events are always replayed: the follow graph is older than any post.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from foryou.world.wire import TWEET_EVENTS, WireValue, WorldEvent
from foryou.world.world import World

# Fields holding a world timestamp, per record type.
_TIME_FIELDS = ("created_at_ms", "deleted_at_ms", "ts_ms")


@dataclass(frozen=True)
class TimeShift:
    """wall_ms = world_ms + offset_ms."""

    offset_ms: int

    @classmethod
    def anchor(cls, world_ms: int, wall_ms: int) -> "TimeShift":
        """The shift that maps `world_ms` (e.g. the world's last event) to `wall_ms` (e.g. now)."""
        return cls(wall_ms - world_ms)

    def to_wall(self, world_ms: int) -> int:
        return world_ms + self.offset_ms

    def to_world(self, wall_ms: int | float) -> int:
        return int(wall_ms) - self.offset_ms


def rebase_value(value: WireValue, shift: TimeShift) -> WireValue:
    """A copy of a wire value with its timestamps moved to wall time."""
    return {k: shift.to_wall(v) if k in _TIME_FIELDS and v is not None else v for k, v in value.items()}


def world_end_ms(world: World) -> int:
    """The time of the world's last event (at most the configured end)."""
    created = world.posts.created_ms
    last = int(created[-1]) if created.size else world.config.start_ms
    return max(last, int(world.population.follows.ts_ms.max(initial=world.config.start_ms)))


def replay_events(world: World, shift: TimeShift, window_ms: int | None = None) -> Iterator[WorldEvent]:
    """The world's events in stream order, rebased; posts older than `window_ms` before the end are left
    out with their deletes (None keeps every post)."""
    cutoff = None if window_ms is None else world_end_ms(world) - window_ms
    for event in world.events():
        value = event.value
        if cutoff is not None and event.topic == TWEET_EVENTS:
            created = value.get("created_at_ms")
            if created is None:  # a delete: keep it when its post is kept
                created = int(world.created_ms(value["post_id"]))
            if created < cutoff:
                continue
        yield WorldEvent(shift.to_wall(event.time_ms), event.topic, event.key, rebase_value(value, shift))


def rebase_events(
    topic: str, values: Iterable[WireValue], shift: TimeShift, key_field: str = "user_id"
) -> Iterator[WorldEvent]:
    """Wire values of one user-keyed topic (e.g. an earlier simulation's engagements) as rebased events,
    in their given order."""
    for value in values:
        rebased = rebase_value(value, shift)
        yield WorldEvent(rebased["ts_ms"], topic, str(value[key_field]).encode(), rebased)


def merge_by_time(*streams: Iterable[WorldEvent]) -> list[WorldEvent]:
    """Several event streams as one list in time order (stable: equal times keep stream order)."""
    events = [event for stream in streams for event in stream]
    events.sort(key=lambda event: event.time_ms)
    return events
