from streams.filters import CoreDataHydrationFilter
from tests.streams.foryou_fakes import candidate, ids, query


def test_removes_candidates_without_core_data():
    result = CoreDataHydrationFilter().filter(
        query(), [candidate(1, 10), candidate(2, 10, hydrate_core=False), candidate(3, 11)]
    )
    assert ids(result.kept) == [1, 3]
    assert ids(result.removed) == [2]
    assert result.reasons == {"missing_core_data": 1}
