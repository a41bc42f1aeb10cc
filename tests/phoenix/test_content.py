"""The content encoder: the shipped sentence encoder's forward, the distilled static table, post vectors."""

import numpy as np
import pytest

from phoenix import content


@pytest.fixture(scope="module")
def encoder() -> content.ContentEncoder:
    return content.load_encoder()


def test_the_encoder_forward_reproduces_the_published_similarities() -> None:
    # The all-MiniLM-L6-v2 model card's example: cosine similarity of the first sentence to the others.
    tokenizer, weights = content.load_sentence_encoder()
    tokenizer.enable_padding()
    sentences = ["That is a happy person", "That is a happy dog", "That is a very happy person", "Today is a sunny day"]
    encoded = tokenizer.encode_batch(sentences)
    ids = np.array([e.ids for e in encoded], np.int32)
    mask = np.array([e.attention_mask for e in encoded], bool)
    pooled = np.array(content.bert_mean_pooled(weights, ids, mask))
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(pooled[0] @ pooled[1:].T, [0.6946, 0.9429, 0.2569], atol=2e-3)


def test_vectors_are_deterministic_unit_text_plus_media(encoder: content.ContentEncoder) -> None:
    texts = ["The striker scored a late goal", "New compiler release", ""]
    first = encoder.encode(texts, ["none", "photo", "video"])
    again = content.ContentEncoder(*_reloaded()).encode(texts, ["none", "photo", "video"])
    assert first.shape == (3, content.CONTENT_DIM) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    text = first[:, : content.TEXT_DIM]
    np.testing.assert_allclose(np.linalg.norm(text[:2], axis=1), 1.0, rtol=1e-5)
    assert not text[2].any()  # no text: only the media part
    np.testing.assert_array_equal(first[:, content.TEXT_DIM :], np.eye(3) * content.MEDIA_SCALE)


def _reloaded():
    with content._model_zip() as archive:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode())
    return tokenizer, np.load(content._cache_path(content._default_cache_dir()))


def test_topically_similar_posts_are_nearer(encoder: content.ContentEncoder) -> None:
    posts = [
        "The striker scored a late goal to win the league match",
        "Coach praises the team after the playoff victory at the stadium",
        "Senate debate on election policy heats up",
        "Voters head to the ballot as the minister's campaign ends",
        "My sourdough recipe: flour, water, salt and patience",
        "Best ramen and tacos in town, the bakery brunch too",
    ]
    v = encoder.encode(posts, ["none"] * len(posts))[:, : content.TEXT_DIM]
    sims = v @ v.T
    for a, b in ((0, 1), (2, 3), (4, 5)):
        others = [i for i in range(len(posts)) if i not in (a, b)]
        assert sims[a, b] > sims[a, others].max(), (a, b)


def test_any_language_or_script_gets_a_vector_and_unknown_characters_do_not_crash(encoder) -> None:
    texts = ["Der Stürmer erzielte ein spätes Tor", "東京で新しいラーメン店", "Привет мир", "مرحبا", "😀🎉", "\x00\n\t"]
    vectors = encoder.encode(texts, ["none"] * len(texts))
    assert np.isfinite(vectors).all()
    assert (np.abs(vectors[:4, : content.TEXT_DIM]).sum(1) > 0).all()


def test_bad_media_kind_is_refused(encoder: content.ContentEncoder) -> None:
    with pytest.raises(ValueError, match="media kind"):
        encoder.encode(["x"], ["gif"])
    with pytest.raises(ValueError, match="one media kind per text"):
        encoder.encode(["x", "y"], ["none"])


def test_the_ascii_fast_path_tokenises_as_the_model_does(encoder: content.ContentEncoder) -> None:
    texts = [
        "Hello, World! It's 3:45pm -- see https://t.co/abc_DEF?x=1&y=2 #tag @user",
        "tabs\tand\nnewlines\r\nand  double  spaces; (parens) [brackets] {braces} ~tilde` ^caret |pipe",
        "unaffable UNAFFABLE snake_case_name CamelCaseWord 1234567 3.14159 e=mc^2 a\x07bell",
        "",
        "word " * 200,  # truncated like the model truncates
    ]
    tokenizer = encoder._tokenizer
    skip = {tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[UNK]")}
    for text in texts:
        assert encoder.token_ids(text) == [i for i in tokenizer.encode(text).ids if i not in skip], text
