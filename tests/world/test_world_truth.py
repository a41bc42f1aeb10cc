"""The ground truth behaves as its docstring says (checked on posts whose features the test sets)."""

import dataclasses

import numpy as np
import pytest

from foryou.world.config import HOUR_MS, preset
from foryou.world.posts import MEDIA_NONE, MEDIA_PHOTO, MEDIA_VIDEO, NEVER, ORIGINAL, POST_ID_BASE, QUOTE
from foryou.world.truth import DEFAULT_WEIGHTS, GroundTruth, weight_vector
from foryou.world.world import Relation, World
from topics.actions import ACTION_INDEX, NEGATIVE_ACTIONS

USER = 1  # user index 0
AUTHOR = 3  # author index 2 (not the user)


@pytest.fixture(scope="module")
def base() -> World:
    return World.generate(preset("tiny", seed=3))


def _world_with_posts(base: World, **columns: list) -> World:
    """The base world whose first posts get the given feature values (all original, by AUTHOR, at start)."""
    count = len(next(iter(columns.values())))
    posts = base.posts
    defaults = {
        "topic": [0] * count, "quality": [0.5] * count, "media": [MEDIA_NONE] * count,
        "video_ms": [0] * count, "kind": [ORIGINAL] * count, "subscriber_only": [False] * count,
        "deleted_ms": [NEVER] * count,
    }
    defaults.update(columns)
    updates = {}
    for name in (*defaults, "author", "created_ms", "content"):
        array = getattr(posts, name).copy()
        if name == "author":
            array[:count] = AUTHOR - 1
        elif name == "created_ms":
            array[:count] = base.config.start_ms
        elif name == "content":
            array[:count] = np.arange(count)
        else:
            array[:count] = defaults[name]
        updates[name] = array
    return World(base.config, base.population, dataclasses.replace(posts, **updates))


def _probabilities(world: World, count: int, now_ms: int | None = None, relation: Relation | None = None):
    now = world.config.start_ms + 1000 if now_ms is None else now_ms
    users = np.full(count, USER)
    posts = POST_ID_BASE + np.arange(count)
    return GroundTruth(world).action_probabilities(users, posts, now, relation)


def _topics(base: World) -> tuple[int, int]:
    interests = base.population.interests[USER - 1]
    return int(np.argmax(interests)), int(np.argmin(interests))


def test_favorite_higher_for_top_topic_than_disliked(base: World) -> None:
    top, disliked = _topics(base)
    p = _probabilities(_world_with_posts(base, topic=[top, disliked]), 2)
    assert p[0, ACTION_INDEX["favorite"]] > 5 * p[1, ACTION_INDEX["favorite"]]
    assert p[0, ACTION_INDEX["dwell"]] > p[1, ACTION_INDEX["dwell"]]


def test_negatives_higher_for_mismatch_and_low_quality(base: World) -> None:
    top, disliked = _topics(base)
    world = _world_with_posts(base, topic=[top, disliked, top, top], quality=[0.6, 0.6, 0.9, 0.05])
    p = _probabilities(world, 4)
    for name in NEGATIVE_ACTIONS:
        column = p[:, ACTION_INDEX[name]]
        assert column[1] > column[0], name  # mismatch
        assert column[3] > column[2], name  # low quality


def test_negatives_scale_with_intolerance(base: World) -> None:
    _, disliked = _topics(base)
    world = _world_with_posts(base, topic=[disliked])
    tolerance = world.population.tolerance.copy()
    probabilities = []
    for value in (0.9, 0.1):
        tolerance[USER - 1] = value
        population = dataclasses.replace(world.population, tolerance=tolerance.copy())
        probabilities.append(_probabilities(World(world.config, population, world.posts), 1)[0])
    for name in NEGATIVE_ACTIONS:
        assert probabilities[1][ACTION_INDEX[name]] == pytest.approx(9 * probabilities[0][ACTION_INDEX[name]])


def test_media_gates(base: World) -> None:
    world = _world_with_posts(
        base, media=[MEDIA_NONE, MEDIA_PHOTO, MEDIA_VIDEO], video_ms=[0, 0, 20_000],
        kind=[ORIGINAL, ORIGINAL, QUOTE],
    )
    p = _probabilities(world, 3)
    assert p[0, ACTION_INDEX["vqv"]] == 0 and p[1, ACTION_INDEX["vqv"]] == 0 and p[2, ACTION_INDEX["vqv"]] > 0
    assert p[1, ACTION_INDEX["photo_expand"]] > 0
    assert p[0, ACTION_INDEX["photo_expand"]] == 0 and p[2, ACTION_INDEX["photo_expand"]] == 0
    assert p[2, ACTION_INDEX["quoted_click"]] > 0 and p[:2, ACTION_INDEX["quoted_click"]].sum() == 0
    assert p[0, ACTION_INDEX["video_open"]] == 0 and p[1, ACTION_INDEX["video_open"]] == 0
    assert p[2, ACTION_INDEX["video_open"]] > 0


def test_relation_effects(base: World) -> None:
    top, _ = _topics(base)
    world = _world_with_posts(base, topic=[top, top, top, top], subscriber_only=[False, False, False, True])
    relation = Relation(
        following=np.array([False, True, False, False]),
        engagements=np.array([0, 0, 5, 0]),
        blocked=np.zeros(4, dtype=bool),
    )
    p = _probabilities(world, 4, relation=relation)
    favorite = p[:, ACTION_INDEX["favorite"]]
    assert favorite[1] > favorite[0] and favorite[2] > favorite[0]
    assert p[1, ACTION_INDEX["follow_author"]] == 0 < p[0, ACTION_INDEX["follow_author"]]
    assert favorite[3] == pytest.approx(0.1 * favorite[0])  # paywalled for a non-follower


def test_freshness_decays(base: World) -> None:
    world = _world_with_posts(base, topic=[0])
    start = world.config.start_ms
    fresh, stale = (_probabilities(world, 1, now_ms=start + age)[0] for age in (HOUR_MS, 48 * HOUR_MS))
    assert fresh[ACTION_INDEX["favorite"]] > stale[ACTION_INDEX["favorite"]]


def test_invisible_posts_have_no_actions(base: World) -> None:
    start = base.config.start_ms
    world = _world_with_posts(base, topic=[0, 0], deleted_ms=[start + 500, NEVER])
    assert _probabilities(world, 2, now_ms=start + 1000)[0].sum() == 0  # deleted
    assert _probabilities(world, 2, now_ms=start - 1000).sum() == 0  # not yet created
    own = GroundTruth(world).action_probabilities(np.array([AUTHOR]), np.array([POST_ID_BASE + 1]), start + 1)
    assert own.sum() == 0


def test_probabilities_are_valid_and_dwell_time_follows_dwell(base: World) -> None:
    rng = np.random.default_rng(0)
    users = rng.integers(1, base.num_users + 1, 2000)
    posts = POST_ID_BASE + rng.integers(0, base.num_posts, 2000)
    now = base.config.start_ms + base.config.duration_ms // 2
    p = GroundTruth(base).action_probabilities(users, posts, now)
    assert p.shape == (2000, len(ACTION_INDEX))
    assert (p >= 0).all() and (p <= 1).all()
    assert (p[:, ACTION_INDEX["dwell_time"]] <= p[:, ACTION_INDEX["dwell"]]).all()
    visible = GroundTruth(base).assess(users, posts, now).visible
    dwell, not_dwelled = p[:, ACTION_INDEX["dwell"]], p[:, ACTION_INDEX["not_dwelled"]]
    np.testing.assert_allclose((dwell + not_dwelled)[visible], 1.0)
    np.testing.assert_array_equal(p[:, ACTION_INDEX["click_dwell_time"]], p[:, ACTION_INDEX["click"]])
    assert p[:, ACTION_INDEX["open_link"]].sum() == 0  # the world's posts carry no links
    assert p.sum() > 0


def test_expected_value_is_weighted_sum(base: World) -> None:
    users = np.array([1, 2, 3])
    posts = POST_ID_BASE + np.array([10, 20, 30])
    now = base.config.start_ms + base.config.duration_ms // 2
    truth = GroundTruth(base)
    probabilities = truth.action_probabilities(users, posts, now)
    expected = probabilities @ np.array([DEFAULT_WEIGHTS.get(n, 0.0) for n in ACTION_INDEX])
    np.testing.assert_allclose(truth.expected_value(users, posts, now), expected)
    only_favorite = truth.expected_value(users, posts, now, {"favorite": 2.0})
    np.testing.assert_allclose(only_favorite, 2.0 * probabilities[:, ACTION_INDEX["favorite"]])
    with pytest.raises(KeyError):
        weight_vector({"likes": 1.0})
