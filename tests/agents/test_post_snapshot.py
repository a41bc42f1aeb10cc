"""The `/inspect/post/{id}` body: what a real post-store replica holds for a post."""

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from agents.ops import post_snapshot
from stores.post_store import PostStore
from tests.stores.test_post_store import NOW, create, delete


def two_number_encoder(texts: Sequence[str], media: Sequence[str]) -> np.ndarray:
    return np.array([[len(text), kind == "photo"] for text, kind in zip(texts, media, strict=True)], np.float32)


@pytest.fixture
def store(tmp_path) -> Iterator[PostStore]:
    posts = PostStore(str(tmp_path / "posts"), content_encoder=two_number_encoder)
    yield posts
    posts.close()


def test_a_stored_post_shows_its_fields_its_authors_followers_and_its_content(store: PostStore) -> None:
    follows = [{"type": "follower_delta", "author_id": 10, "delta": 1, "follower_id": f} for f in (1, 2)]
    store.apply([create(1, 10, NOW - 5, text="abc", media="photo"), *follows], now_ms=NOW)
    body = post_snapshot(store, 1)
    assert body["post_id"] == 1 and body["deleted"] is False
    assert body["post"]["author_id"] == 10 and body["post"]["text"] == "abc"
    assert body["follower_count_of_author"] == 2
    assert body["content_vector"] == [3.0, 1.0]


def test_a_deleted_post_shows_its_tombstone_and_nothing_else(store: PostStore) -> None:
    store.apply([create(1, 10, NOW - 5)], now_ms=NOW)
    store.apply([delete(1, 10, NOW)], now_ms=NOW)
    assert post_snapshot(store, 1) == {
        "post_id": 1, "deleted": True, "post": None, "follower_count_of_author": None, "content_vector": None,
    }
