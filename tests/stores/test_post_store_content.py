"""Content vectors stored with the posts: written at apply by the store's encoder, dropped with the post."""

from collections.abc import Sequence

import numpy as np
import pytest

from stores.post_store import PostStore
from tests.stores.test_post_store import DAY, NOW, create, delete, repost


def letters_encoder(texts: Sequence[str], media: Sequence[str]) -> np.ndarray:
    """A deterministic stand-in encoder: counts of a, b, c and whether there is a photo."""
    calls.append(len(texts))
    return np.array(
        [[t.count("a"), t.count("b"), t.count("c"), kind == "photo"] for t, kind in zip(texts, media, strict=True)],
        np.float32,
    )


calls: list[int] = []


@pytest.fixture
def store(tmp_path):
    calls.clear()
    posts = PostStore(str(tmp_path / "posts"), content_encoder=letters_encoder)
    yield posts
    posts.close()


def test_each_batch_is_embedded_in_one_call_and_read_back(store: PostStore) -> None:
    store.apply(
        [create(1, 10, NOW - 3, text="aab"), create(2, 11, NOW - 2, text="c", media="photo"), delete(9, 9, NOW)],
        now_ms=NOW,
    )
    assert calls == [2]
    photo, text, missing = store.content_vectors([2, 1, 404])
    np.testing.assert_array_equal(photo, [0, 0, 1, 1])
    np.testing.assert_array_equal(text, [2, 1, 0, 0])
    assert missing is None and text.dtype == np.float32


def test_a_repost_stores_its_originals_content(store: PostStore) -> None:
    store.apply([create(1, 10, NOW - 3, text="abc")], now_ms=NOW)
    store.apply([repost(2, 11, NOW - 2, 1, 10), create(3, 12, NOW - 1, text="bb"), repost(4, 12, NOW, 3, 12)],
                now_ms=NOW)
    vectors = store.content_vectors([1, 2, 3, 4])
    np.testing.assert_array_equal(vectors[1], vectors[0])  # original in an earlier batch
    np.testing.assert_array_equal(vectors[3], vectors[2])  # original earlier in the same batch


def test_deleted_and_trimmed_posts_lose_their_content(store: PostStore) -> None:
    store.apply([create(1, 10, NOW - DAY, text="a"), create(2, 10, NOW - 1, text="b")], now_ms=NOW)
    store.apply([delete(2, 10, NOW)], now_ms=NOW)
    assert store.content_vectors([2]) == [None]
    assert store.content_vectors([1])[0] is not None
    store.trim(NOW + 2 * DAY)
    assert store.content_vectors([1]) == [None]


def test_a_store_without_encoder_has_no_content(tmp_path) -> None:
    with PostStore(str(tmp_path / "plain")) as plain:
        plain.apply([create(1, 10, NOW, text="abc")], now_ms=NOW)
        assert plain.content_vectors([1]) == [None]
