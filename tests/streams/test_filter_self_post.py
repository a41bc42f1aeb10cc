from streams.filters import SelfPostFilter
from tests.streams.foryou_fakes import USER, candidate, ids, query


def test_removes_the_users_own_posts_only():
    result = SelfPostFilter().filter(query(user_id=USER), [candidate(1, USER), candidate(2, USER + 1)])
    assert ids(result.kept) == [2]
    assert result.reasons == {"self_post": 1}
