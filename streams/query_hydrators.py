"""Query hydrators: the user's state from the user-state store, read once per request."""

from collections.abc import Mapping
from typing import Any

from streams.ports import UserStateStore
from streams.query import FeedQuery
from streams.stages import QueryHydrator


class ActionSequenceHydrator(QueryHydrator):
    """The user's engagement history (oldest to newest): Phoenix's input, and posts already seen."""

    name = "ActionSequence"
    fields = frozenset({"action_sequence"})

    def __init__(self, user_state: UserStateStore) -> None:
        self._user_state = user_state

    async def hydrate(self, query: FeedQuery) -> Mapping[str, Any]:
        return {"action_sequence": tuple(self._user_state.action_sequence(query.user_id))}


class UserFeaturesHydrator(QueryHydrator):
    """Who the user follows, blocks and mutes, and the muted keywords."""

    name = "UserFeatures"
    fields = frozenset({"user_features"})

    def __init__(self, user_state: UserStateStore) -> None:
        self._user_state = user_state

    async def hydrate(self, query: FeedQuery) -> Mapping[str, Any]:
        return {"user_features": self._user_state.user_features(query.user_id)}


class ServedHistoryHydrator(QueryHydrator):
    """Posts already served to the user (recorded by the served side effect), merged with the request's."""

    name = "ServedHistory"
    fields = frozenset({"served_ids"})

    def __init__(self, user_state: UserStateStore) -> None:
        self._user_state = user_state

    async def hydrate(self, query: FeedQuery) -> Mapping[str, Any]:
        return {"served_ids": query.served_ids | frozenset(self._user_state.served_ids(query.user_id))}
