import pytest

from stores.records import UserFeatures
from streams.filters import MutedKeywordFilter
from tests.streams.foryou_fakes import candidate, ids, post, query


def muted(*keywords: str):
    return query(features=UserFeatures(muted_keywords=keywords))


def texts(*values: str):
    return [candidate(i, 10, core=post(i, 10, text=text)) for i, text in enumerate(values, start=1)]


@pytest.mark.parametrize(
    ("keyword", "text", "removed"),
    [
        ("spam", "This is spam content", True),
        ("spam", "This is SPAM content", True),
        ("SPAM", "this is SpAm", True),
        ("bitcoin", "Buy bitcoin! It's great", True),
        ("bitcoin", "bitcoin, ethereum", True),
        ("bitcoin", "(bitcoin is volatile)", True),
        ("bitcoin", "'bitcoin'", True),
        ("art", "party time", False),
        ("art", "the art desk", True),
        ("art", "artistic", False),
        ("art", "smart", False),
        ("widget", "#widget launch", True),
        ("#launch", "#LAUNCH day", True),
        ("#launch", "support launch", False),
        ("crypto scam", "a crypto  scam warning", True),
        ("crypto scam", "crypto is great, scam artists", False),
        ("straße", "STRASSE closed", True),
        ("café", "I love CAFÉ culture", True),
        ("c++", "learning c++ today", True),
    ],
)
def test_case_insensitive_word_boundary_matching(keyword: str, text: str, removed: bool):
    result = MutedKeywordFilter().filter(muted(keyword), texts(text))
    assert (len(result.removed) == 1) is removed


def test_reposted_and_quoted_texts_are_checked_too():
    repost = candidate(1, 10, core=post(1, 10, repost_of_post_id=9), original=post(9, 11, text="huge SPOILER"))
    quote = candidate(2, 10, core=post(2, 10, text="look", quote_of_post_id=8), quoted=post(8, 11, text="spoiler!"))
    clean = candidate(3, 10, core=post(3, 10, text="nothing here"))
    result = MutedKeywordFilter().filter(muted("spoiler"), [repost, quote, clean])
    assert ids(result.kept) == [3]
    assert result.reasons == {"muted_keyword": 2}


def test_no_keywords_keeps_everything_and_blank_keywords_are_ignored():
    assert len(MutedKeywordFilter().filter(muted(), texts("a", "b")).kept) == 2
    assert len(MutedKeywordFilter().filter(muted("  "), texts("a b")).kept) == 1


def test_without_user_features_every_candidate_is_dropped():
    result = MutedKeywordFilter().filter(query(features=None), texts("a", "b"))
    assert result.kept == []
    assert result.reasons == {"user_features_unavailable": 2}
