from streams.filters import AgeFilter
from tests.streams.foryou_fakes import HOUR_MS, candidate, ids, post, query


def test_drops_posts_older_than_max_age_and_keeps_the_boundary():
    max_age = 48 * HOUR_MS
    candidates = [
        candidate(1, 10, core=post(1, 10, age_ms=HOUR_MS)),
        candidate(2, 10, core=post(2, 10, age_ms=max_age)),  # exactly at the limit: kept
        candidate(3, 10, core=post(3, 10, age_ms=max_age + 1)),
    ]
    result = AgeFilter(max_age).filter(query(), candidates)
    assert ids(result.kept) == [1, 2]
    assert result.reasons == {"too_old": 1}


def test_unknown_age_is_removed():
    result = AgeFilter(HOUR_MS).filter(query(), [candidate(1, 10, hydrate_core=False)])
    assert result.reasons == {"unknown_age": 1}


def test_future_posts_are_kept():
    result = AgeFilter(HOUR_MS).filter(query(), [candidate(1, 10, core=post(1, 10, age_ms=-5_000))])
    assert ids(result.kept) == [1]
