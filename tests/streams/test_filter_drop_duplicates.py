from streams.filters import DropDuplicatesFilter
from tests.streams.foryou_fakes import candidate, ids, query


def test_keeps_first_of_each_post_id_and_counts_the_rest():
    first = candidate(1, 10, source="thunder")
    result = DropDuplicatesFilter().filter(
        query(), [first, candidate(2, 20), candidate(1, 10, source="phoenix_retrieval"), candidate(1, 10)]
    )
    assert ids(result.kept) == [1, 2]
    assert result.kept[0] is first
    assert len(result.removed) == 2
    assert result.reasons == {"duplicate": 2}


def test_distinct_posts_and_empty_input_pass_untouched():
    assert ids(DropDuplicatesFilter().filter(query(), [candidate(3, 1), candidate(4, 1)]).kept) == [3, 4]
    empty = DropDuplicatesFilter().filter(query(), [])
    assert empty.kept == [] and empty.removed == []
