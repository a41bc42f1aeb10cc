import random
import re

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


@pytest.mark.parametrize(
    ("keyword", "text", "removed"),
    [
        ("#launch", "a#launch", False),  # the symbol follows a word: not a boundary
        ("#launch", "(#launch)", True),
        ("c++", "c++x", False),
        ("c++", "c + +", False),
        ("don't", "I don't know", True),
        ("don't", "don'tcha", False),
        ("fine", "ﬁne dining", True),  # NFKC: the ligature is "fi", as the keyword was stored
        ("spoiler alert", "SPOILER\n\talert", True),
        ("a b", "a\x01b", True),  # marker characters in a text are whitespace to the matcher
    ],
)
def test_boundaries_around_symbols_and_normalisation(keyword: str, text: str, removed: bool):
    result = MutedKeywordFilter().filter(muted(keyword), texts(text))
    assert (len(result.removed) == 1) is removed


def _regex_reference(keywords: tuple[str, ...], text: str) -> bool:
    """The rules as one regex alternation (the filter's former implementation: right, but superlinear)."""
    alternatives = [r"\s+".join(re.escape(word) for word in k.casefold().split()) for k in keywords if k.split()]
    if not alternatives:
        return False
    return re.search(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", text.casefold()) is not None


def test_matches_exactly_what_the_regex_rules_match_on_random_texts():
    rng = random.Random(7)
    alphabet = "ab c#+'_é.\n"
    for _ in range(3_000):
        keywords = tuple("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(3))
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        found = MutedKeywordFilter().filter(muted(*keywords), texts(text)).removed != []
        assert found is _regex_reference(keywords, text), (keywords, text)


def test_crafted_keywords_against_a_long_text_are_matched_correctly():
    # 200 keywords sharing a 90-character prefix, against 10,000 characters of that prefix repeated: the
    # former regex tried every keyword at every position (seconds); the speed is in the benchmark record
    # `filters.muted_keyword.adversarial` (bench/results/filters.json), this test checks the answers.
    keywords = tuple(("a " * 45) + f"b{i}" for i in range(200))
    long_text = "a " * 5_000
    assert MutedKeywordFilter().filter(muted(*keywords), texts(long_text)).removed == []
    hit = MutedKeywordFilter().filter(muted(*keywords), texts(long_text + "b199", long_text + "b1999"))
    assert ids(hit.removed) == [1]
