from streams.filters import VisibilityFilter
from tests.streams.foryou_fakes import candidate, ids, query


def test_removes_deleted_and_unallowed_safety_labels():
    candidates = [
        candidate(1, 10, deleted=True),
        candidate(2, 10, deleted=False, safety_label="violent"),
        candidate(3, 10, deleted=False, safety_label="sensitive"),
        candidate(4, 10, deleted=False),
        candidate(5, 10),  # visibility unknown (hydration failed): kept
    ]
    result = VisibilityFilter(allowed_safety_labels=("sensitive",)).filter(query(), candidates)
    assert ids(result.kept) == [3, 4, 5]
    assert result.reasons == {"deleted": 1, "safety_label": 1}
