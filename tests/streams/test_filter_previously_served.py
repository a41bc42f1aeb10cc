from streams.filters import PreviouslyServedFilter
from tests.streams.foryou_fakes import candidate, ids, post, query


def test_removes_served_posts_and_reposts_of_them_on_bottom_requests():
    q = query(served_ids=frozenset({1, 50}), is_bottom_request=True)
    candidates = [candidate(1, 10), candidate(2, 10, core=post(2, 10, repost_of_post_id=50)), candidate(3, 10)]
    stage = PreviouslyServedFilter(all_requests=False)
    assert stage.enable(q)
    result = stage.filter(q, candidates)
    assert ids(result.kept) == [3]
    assert result.reasons == {"previously_served": 2}


def test_applies_to_top_requests_only_when_configured():
    top = query(served_ids=frozenset({1}), is_bottom_request=False)
    assert not PreviouslyServedFilter(all_requests=False).enable(top)
    assert PreviouslyServedFilter(all_requests=True).enable(top)
    assert ids(PreviouslyServedFilter(all_requests=True).filter(top, [candidate(1, 10)]).kept) == []
