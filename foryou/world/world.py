"""The simulated world: a population, its social graph and its posts, plus the event stream they make.

`World.generate(config)` is deterministic in `config` (one numpy Generator seeded with `config.seed` draws
everything, in a fixed order). The world is static ground truth; what users do while being served feeds
(engagements, new follows, blocks) is the client's state (client.py), overlaid on the world's relations.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from foryou.world.config import WorldConfig
from foryou.world.population import Population, generate_population
from foryou.world.posts import (
    MEDIA_NAMES,
    MEDIA_VIDEO,
    POST_ID_BASE,
    QUOTE,
    REPLY,
    REPOST,
    PostTable,
    generate_posts,
)
from foryou.world.vocab import topic_words
from foryou.world.wire import (
    SOCIAL_GRAPH_EVENTS,
    TWEET_EVENTS,
    WireValue,
    WorldEvent,
    delete_value,
    social_value,
    wire_key,
)
from stores.records import Post
from topics.schemas import TweetCreate

_EVENT_CHUNK = 65_536
_FOLLOW, _BLOCK, _MUTE, _KEYWORD, _CREATE, _DELETE = range(6)
_SOCIAL_TYPES = {_FOLLOW: "follow", _BLOCK: "block", _MUTE: "mute"}


@dataclass(frozen=True)
class Relation:
    """How each user of a batch relates to the author of the matching post (arrays of one length)."""

    following: np.ndarray  # bool
    engagements: np.ndarray  # int: past positive engagements of the user with the author
    blocked: np.ndarray  # bool: blocked or muted


class World:
    def __init__(self, config: WorldConfig, population: Population, posts: PostTable) -> None:
        self.config = config
        self.population = population
        self.posts = posts

    @classmethod
    def generate(cls, config: WorldConfig) -> "World":
        rng = np.random.default_rng(config.seed)
        population = generate_population(rng, config)
        return cls(config, population, generate_posts(rng, config, population))

    @property
    def num_users(self) -> int:
        return self.config.num_users

    @property
    def num_posts(self) -> int:
        return len(self.posts)

    # Ids. User id = index + 1; post id = POST_ID_BASE + index.

    def user_ids(self) -> np.ndarray:
        return np.arange(1, self.num_users + 1, dtype=np.int64)

    def post_ids(self) -> np.ndarray:
        return POST_ID_BASE + np.arange(self.num_posts, dtype=np.int64)

    def user_index(self, user_ids: np.ndarray | int) -> np.ndarray:
        index = np.asarray(user_ids, dtype=np.int64) - 1
        if index.size and (index.min() < 0 or index.max() >= self.num_users):
            raise KeyError("user id outside this world")
        return index

    def post_index(self, post_ids: np.ndarray | int, strict: bool = True) -> np.ndarray:
        """Indices of post ids; unknown ids raise KeyError, or map to -1 when not strict."""
        index = np.asarray(post_ids, dtype=np.int64) - POST_ID_BASE
        unknown = (index < 0) | (index >= self.num_posts)
        if unknown.any():
            if strict:
                raise KeyError("post id outside this world")
            index = np.where(unknown, -1, index)
        return index

    def author_ids(self, post_ids: np.ndarray) -> np.ndarray:
        return self.posts.author[self.post_index(post_ids)] + 1

    def created_ms(self, post_ids: np.ndarray) -> np.ndarray:
        return self.posts.created_ms[self.post_index(post_ids)]

    # Relations at a time, from the generated graph.

    def is_following(self, user_ids: np.ndarray, author_ids: np.ndarray, now_ms: np.ndarray | int) -> np.ndarray:
        users, authors = self.user_index(user_ids), self.user_index(author_ids)
        return self.population.follows.active(users, authors, now_ms, self.num_users)

    def relation(self, user_ids: np.ndarray, author_ids: np.ndarray, now_ms: np.ndarray | int) -> Relation:
        """The generated graph's relations at now_ms; no engagements (those come from the client's state)."""
        users, authors = self.user_index(user_ids), self.user_index(author_ids)
        population = self.population
        blocked = population.blocks.active(users, authors, now_ms, self.num_users)
        blocked |= population.mutes.active(users, authors, now_ms, self.num_users)
        return Relation(
            following=population.follows.active(users, authors, now_ms, self.num_users),
            engagements=np.zeros(users.shape, dtype=np.int64),
            blocked=blocked,
        )

    # Posts as records and wire values.

    def post(self, post_id: int) -> Post:
        value = self.create_values(self.post_index(np.array([post_id])))[0]
        return Post(**{k: v for k, v in value.items() if k not in ("v", "type")})

    def create_values(self, index: np.ndarray) -> list[WireValue]:
        posts = self.posts
        words = topic_words(self.config.num_topics)
        target = posts.target[index]
        root = posts.root[index]
        columns = zip(
            (POST_ID_BASE + index).tolist(),
            (posts.author[index] + 1).tolist(),
            posts.created_ms[index].tolist(),
            posts.kind[index].tolist(),
            np.where(target >= 0, POST_ID_BASE + target, -1).tolist(),
            np.where(target >= 0, posts.author[np.maximum(target, 0)] + 1, -1).tolist(),
            np.where(root >= 0, POST_ID_BASE + root, -1).tolist(),
            posts.topic[index].tolist(),
            posts.words[index].tolist(),
            posts.media[index].tolist(),
            posts.video_ms[index].tolist(),
            posts.subscriber_only[index].tolist(),
            (posts.quality[index] < self.config.spam_quality).tolist(),
            strict=True,
        )
        values = []
        for post_id, author_id, created, kind, target_id, target_author, root_id, topic, post_words, media, \
                video_ms, subscriber_only, spam in columns:
            vocabulary = words[topic]
            values.append(
                TweetCreate(
                    post_id=post_id,
                    author_id=author_id,
                    created_at_ms=created,
                    text=" ".join(vocabulary[w] for w in post_words),
                    in_reply_to_post_id=target_id if kind == REPLY else None,
                    in_reply_to_user_id=target_author if kind == REPLY else None,
                    repost_of_post_id=target_id if kind == REPOST else None,
                    repost_of_user_id=target_author if kind == REPOST else None,
                    quote_of_post_id=target_id if kind == QUOTE else None,
                    conversation_id=root_id if root_id >= 0 else None,
                    media=MEDIA_NAMES[media],
                    video_duration_ms=video_ms if media == MEDIA_VIDEO else None,
                    subscriber_only=subscriber_only,
                    safety_label="spam" if spam else None,
                ).to_dict()
            )
        return values

    # The event stream.

    def _stream_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time, source code, index within source) of every event, in stream order."""
        population, posts = self.population, self.posts
        deleted = np.flatnonzero(posts.delete_emit_ms != np.iinfo(np.int64).max)
        parts = [
            (population.follows.ts_ms, _FOLLOW),
            (population.blocks.ts_ms, _BLOCK),
            (population.mutes.ts_ms, _MUTE),
            (population.keyword_mutes.ts_ms, _KEYWORD),
            (posts.created_ms, _CREATE),
        ]
        times = [t for t, _ in parts] + [posts.delete_emit_ms[deleted]]
        codes = [np.full(t.size, code, dtype=np.int8) for t, code in parts] + [
            np.full(deleted.size, _DELETE, dtype=np.int8)
        ]
        indices = [np.arange(t.size, dtype=np.int64) for t, _ in parts] + [deleted]
        time = np.concatenate(times)
        order = np.argsort(time, kind="stable")
        return time[order], np.concatenate(codes)[order], np.concatenate(indices)[order]

    def event_count(self) -> int:
        population, posts = self.population, self.posts
        deletes = int((posts.delete_emit_ms != np.iinfo(np.int64).max).sum())
        social = len(population.follows) + len(population.blocks) + len(population.mutes)
        return social + population.keyword_mutes.user.size + self.num_posts + deletes

    def events(self) -> Iterator[WorldEvent]:
        """Every tweet-events and social-graph-events record of the world, in stream order."""
        time, code, index = self._stream_index()
        builders: dict[int, Callable[[np.ndarray, np.ndarray], list[tuple[str, bytes, WireValue]]]] = {
            _FOLLOW: self._edge_builder(_FOLLOW),
            _BLOCK: self._edge_builder(_BLOCK),
            _MUTE: self._edge_builder(_MUTE),
            _KEYWORD: self._keyword_records,
            _CREATE: self._create_records,
            _DELETE: self._delete_records,
        }
        for start in range(0, time.size, _EVENT_CHUNK):
            chunk_time, chunk_code, chunk_index = (a[start : start + _EVENT_CHUNK] for a in (time, code, index))
            records: list[tuple[str, bytes, WireValue] | None] = [None] * chunk_time.size
            for source, build in builders.items():
                where = np.flatnonzero(chunk_code == source)
                if where.size:
                    for position, record in zip(
                        where.tolist(), build(chunk_index[where], chunk_time[where]), strict=True
                    ):
                        records[position] = record
            for t, record in zip(chunk_time.tolist(), records, strict=True):
                assert record is not None  # every source code has a builder
                yield WorldEvent(t, *record)

    def _edge_builder(self, source: int) -> Callable[[np.ndarray, np.ndarray], list[tuple[str, bytes, WireValue]]]:
        edges = {
            _FOLLOW: self.population.follows, _BLOCK: self.population.blocks, _MUTE: self.population.mutes
        }[source]
        kind = _SOCIAL_TYPES[source]

        def build(index: np.ndarray, time: np.ndarray) -> list[tuple[str, bytes, WireValue]]:
            users = (edges.src[index] + 1).tolist()
            targets = (edges.dst[index] + 1).tolist()
            return [
                (SOCIAL_GRAPH_EVENTS, wire_key(u), social_value(kind, u, t, target_id=d))
                for u, d, t in zip(users, targets, time.tolist(), strict=True)
            ]

        return build

    def _keyword_records(self, index: np.ndarray, time: np.ndarray) -> list[tuple[str, bytes, WireValue]]:
        mutes = self.population.keyword_mutes
        users = (mutes.user[index] + 1).tolist()
        return [
            (SOCIAL_GRAPH_EVENTS, wire_key(u), social_value("mute_keyword", u, t, keyword=mutes.keyword[i]))
            for u, i, t in zip(users, index.tolist(), time.tolist(), strict=True)
        ]

    def _create_records(self, index: np.ndarray, time: np.ndarray) -> list[tuple[str, bytes, WireValue]]:
        return [(TWEET_EVENTS, wire_key(value["post_id"]), value) for value in self.create_values(index)]

    def _delete_records(self, index: np.ndarray, time: np.ndarray) -> list[tuple[str, bytes, WireValue]]:
        posts = self.posts
        authors = (posts.author[index] + 1).tolist()
        deleted_at = posts.deleted_ms[index].tolist()
        return [
            (TWEET_EVENTS, wire_key(POST_ID_BASE + i), delete_value(POST_ID_BASE + i, a, d))
            for i, a, d in zip(index.tolist(), authors, deleted_at, strict=True)
        ]
