import pytest

from stores.records import UserFeatures
from stores.social_graph import SocialGraph, normalize_keyword

USER = 5


def graph_event(event_type: str, target_id: int | None = None, keyword: str | None = None, user_id: int = USER) -> dict:
    return {"v": 1, "type": event_type, "user_id": user_id, "target_id": target_id, "keyword": keyword, "ts_ms": 1}


@pytest.fixture
def table() -> dict[int, bytes]:
    return {}


@pytest.fixture
def graph(table: dict[int, bytes]) -> SocialGraph:
    return SocialGraph(table)


def test_follow_and_unfollow_report_only_real_changes(graph: SocialGraph) -> None:
    assert graph.apply(graph_event("follow", 10))
    assert not graph.apply(graph_event("follow", 10))
    assert graph.apply(graph_event("follow", 11))
    assert graph.features(USER).following == {10, 11}
    assert graph.apply(graph_event("unfollow", 10))
    assert not graph.apply(graph_event("unfollow", 10))
    assert not graph.apply(graph_event("unfollow", 99))
    assert graph.features(USER).following == {11}


def test_block_and_mute_are_independent_of_follow(graph: SocialGraph) -> None:
    graph.apply(graph_event("follow", 10))
    assert graph.apply(graph_event("block", 10))
    assert not graph.apply(graph_event("block", 10))
    assert graph.apply(graph_event("mute", 12))
    assert not graph.apply(graph_event("mute", 12))
    assert graph.features(USER) == UserFeatures(
        following=frozenset({10}), blocked=frozenset({10}), muted=frozenset({12})
    )
    assert graph.apply(graph_event("unblock", 10))
    assert not graph.apply(graph_event("unblock", 10))
    assert graph.apply(graph_event("unmute", 12))
    assert not graph.apply(graph_event("unmute", 12))
    assert graph.features(USER) == UserFeatures(following=frozenset({10}))


def test_self_relations_are_ignored(graph: SocialGraph, table: dict[int, bytes]) -> None:
    for event_type in ("follow", "block", "mute"):
        assert not graph.apply(graph_event(event_type, USER))
    assert table == {}


def test_muted_keywords_are_normalised(graph: SocialGraph) -> None:
    assert normalize_keyword("  Hello \t  WORLD ") == "hello world"
    assert normalize_keyword("ＳＴＲＡẞE") == "strasse"
    assert graph.apply(graph_event("mute_keyword", keyword="  Breaking   NEWS "))
    assert not graph.apply(graph_event("mute_keyword", keyword="breaking news"))
    assert graph.features(USER).muted_keywords == ("breaking news",)
    assert graph.apply(graph_event("unmute_keyword", keyword="BREAKING NEWS"))
    assert graph.features(USER).muted_keywords == ()


def test_empty_and_overlong_keywords_are_ignored(graph: SocialGraph, table: dict[int, bytes]) -> None:
    assert not graph.apply(graph_event("mute_keyword", keyword="   "))
    assert not graph.apply(graph_event("mute_keyword", keyword=None))
    assert not graph.apply(graph_event("mute_keyword", keyword="x" * 101))
    assert graph.apply(graph_event("mute_keyword", keyword="x" * 100))
    assert not graph.apply(graph_event("unmute_keyword", keyword="never muted"))
    assert graph.features(USER).muted_keywords == ("x" * 100,)


def test_follow_beyond_the_bound_is_refused(table: dict[int, bytes]) -> None:
    graph = SocialGraph(table, max_following=3)
    for target in (1, 2, 3):
        assert graph.apply(graph_event("follow", target))
    assert not graph.apply(graph_event("follow", 4))
    assert graph.features(USER).following == {1, 2, 3}
    assert graph.apply(graph_event("unfollow", 2))
    assert graph.apply(graph_event("follow", 4))
    assert graph.following(USER) == [1, 3, 4]


def test_blocks_mutes_and_keywords_beyond_the_bound_evict_the_oldest(table: dict[int, bytes]) -> None:
    graph = SocialGraph(table, max_blocked=2, max_muted=2, max_muted_keywords=2)
    for target in (1, 2, 3):
        assert graph.apply(graph_event("block", target))
        assert graph.apply(graph_event("mute", target + 10))
    for keyword in ("a", "b", "c"):
        assert graph.apply(graph_event("mute_keyword", keyword=keyword))
    features = graph.features(USER)
    assert features.blocked == {2, 3}
    assert features.muted == {12, 13}
    assert features.muted_keywords == ("b", "c")


def test_empty_state_removes_the_table_entry(graph: SocialGraph, table: dict[int, bytes]) -> None:
    graph.apply(graph_event("follow", 10))
    graph.apply(graph_event("mute_keyword", keyword="spoiler"))
    assert USER in table
    graph.apply(graph_event("unfollow", 10))
    graph.apply(graph_event("unmute_keyword", keyword="spoiler"))
    assert USER not in table
    assert graph.features(USER) == UserFeatures()


def test_large_graph_round_trips(table: dict[int, bytes]) -> None:
    graph = SocialGraph(table)
    for target in range(1, 5_001):
        graph.apply(graph_event("follow", target * 1_000_003))
    graph.apply(graph_event("block", -9))
    graph.apply(graph_event("mute_keyword", keyword="ünïcode"))
    reloaded = SocialGraph(dict(table)).features(USER)
    assert len(reloaded.following) == 5_000
    assert 5_000 * 1_000_003 in reloaded.following
    assert reloaded.blocked == {-9}
    assert reloaded.muted_keywords == ("ünïcode",)
    assert not graph.apply(graph_event("follow", 1))


def test_invalid_events_are_rejected(graph: SocialGraph, table: dict[int, bytes]) -> None:
    with pytest.raises(ValueError, match="unknown social-graph event type"):
        graph.apply(graph_event("subscribe", 10))
    with pytest.raises(ValueError, match="needs a target_id"):
        graph.apply(graph_event("follow", None))
    assert table == {}
