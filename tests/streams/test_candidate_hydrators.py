"""Each candidate hydrator returns values for its own fields only, one per candidate, in order."""

import asyncio

import numpy as np
import pytest

from stores.records import UserFeatures
from streams.candidate import Candidate, write_fields
from streams.hydrators import (
    AuthorHydrator,
    ContentEmbeddingHydrator,
    CoreDataHydrator,
    InNetworkHydrator,
    SubscriptionHydrator,
    VisibilityHydrator,
)
from streams.pipeline import check_updates
from streams.query import FeedQuery
from streams.stages import CandidateHydrator
from tests.streams.foryou_fakes import FakePostStore, candidate, ids, post, query

STORE = FakePostStore(
    [
        post(1, 10, text="one"),
        post(2, 20, repost_of_post_id=9, repost_of_user_id=30),
        post(9, 30, text="original", subscriber_only=True),
        post(3, 10, quote_of_post_id=4),
        post(4, 40, text="quoted", safety_label="graphic"),
        post(5, 50, subscriber_only=True),
    ],
    deleted={9},
    followers={10: 1000, 20: 5},
    content={1: np.array([1.0, 0.0], np.float32), 2: np.array([0.0, 1.0], np.float32)},
)


def bare(*pairs: tuple[int, int]):
    return [candidate(p, a, hydrate_core=False) for p, a in pairs]


def hydrated(hydrator: CandidateHydrator, q: FeedQuery, candidates: list[Candidate]) -> list[Candidate]:
    """The candidates with the hydrator's values written in, as the framework does (checked the same way)."""
    updates = asyncio.run(hydrator.hydrate(q, candidates))
    write_fields(candidates, check_updates(hydrator.name, hydrator.fields, len(candidates), updates))
    return candidates


HYDRATORS = [
    InNetworkHydrator(),
    CoreDataHydrator(STORE),
    AuthorHydrator(STORE),
    SubscriptionHydrator(),
    VisibilityHydrator(STORE),
    ContentEmbeddingHydrator(STORE),
]


@pytest.mark.parametrize("hydrator", HYDRATORS, ids=lambda h: h.name)
def test_returns_every_owned_field_for_every_candidate_in_order(hydrator):
    given = bare((5, 50), (1, 10), (404, 10), (2, 20), (1, 10))
    updates = asyncio.run(hydrator.hydrate(query(features=UserFeatures(following=frozenset({10}))), given))
    assert updates.keys() == hydrator.fields
    assert all(len(values) == len(given) for values in updates.values())
    assert ids(given) == [5, 1, 404, 2, 1]


def test_values_follow_the_candidates_order():
    features = UserFeatures(following=frozenset({10}))
    out = hydrated(CoreDataHydrator(STORE), query(features=features), bare((5, 50), (1, 10), (404, 10), (1, 10)))
    assert [c.core.post_id if c.core else None for c in out] == [5, 1, None, 1]
    flags = hydrated(InNetworkHydrator(), query(features=features), bare((5, 50), (1, 10), (2, 20), (3, 10)))
    assert [c.in_network for c in flags] == [False, True, False, True]


def test_core_data_reads_posts_originals_and_quotes_and_leaves_missing_ones_empty():
    out = hydrated(CoreDataHydrator(STORE), query(), bare((1, 10), (2, 20), (3, 10), (404, 10)))
    assert out[0].core.text == "one" and out[0].original is None
    assert out[1].original.post_id == 9 and out[1].content.text == "original"
    assert out[2].quoted.text == "quoted"
    assert out[3].core is None


def test_in_network_and_author_data():
    features = UserFeatures(following=frozenset({10}))
    flags = hydrated(InNetworkHydrator(), query(features=features), bare((1, 10), (2, 20)))
    assert [c.in_network for c in flags] == [True, False]
    authors = hydrated(AuthorHydrator(STORE), query(), bare((1, 10), (2, 20), (6, 60), (7, 10)))
    assert [c.author_follower_count for c in authors] == [1000, 5, 0, 1000]
    assert STORE.calls[-1][0] == "follower_counts"  # one batched read, not one per author


def test_subscription_names_the_author_of_the_shown_content():
    core = hydrated(CoreDataHydrator(STORE), query(), bare((1, 10), (2, 20), (5, 50)))
    out = hydrated(SubscriptionHydrator(), query(), core)
    assert [c.subscription_author_id for c in out] == [None, 30, 50]  # the repost of 9 requires 9's author


def test_visibility_sees_deleted_originals_and_labels_of_quoted_content():
    core = hydrated(CoreDataHydrator(STORE), query(), bare((1, 10), (2, 20), (4, 40)))
    out = hydrated(VisibilityHydrator(STORE), query(), core)
    assert [c.deleted for c in out] == [False, True, False]
    assert out[2].safety_label == "graphic" and out[0].safety_label is None


def test_content_embedding_is_the_stored_vector_or_none_in_one_read():
    store = FakePostStore(content=STORE.content)
    out = hydrated(ContentEmbeddingHydrator(store), query(), bare((2, 20), (404, 10), (1, 10)))
    np.testing.assert_array_equal(out[0].content_embedding, [0.0, 1.0])  # a repost's: its original's, as stored
    assert out[1].content_embedding is None
    np.testing.assert_array_equal(out[2].content_embedding, [1.0, 0.0])
    assert store.calls == [("content_vectors", [2, 404, 1])]
