import pytest

from stores.served_history import ServedHistory

USER = 3
T0 = 1_700_000_000_000
HOUR = 3_600_000


@pytest.fixture
def table() -> dict[int, bytes]:
    return {}


def test_records_accumulate_per_user(table: dict[int, bytes]) -> None:
    history = ServedHistory(table)
    history.record(USER, [1, 2, 3], T0)
    history.record(USER, [3, 4], T0 + 1_000)
    history.record(USER + 1, [9], T0)
    assert history.served_ids(USER, now_ms=T0 + 2_000) == {1, 2, 3, 4}
    assert history.served_ids(USER + 1, now_ms=T0 + 2_000) == {9}
    assert history.served_ids(USER + 2, now_ms=T0) == set()


def test_bound_drops_the_oldest_served_first(table: dict[int, bytes]) -> None:
    history = ServedHistory(table, max_ids=4)
    history.record(USER, [1, 2, 3], T0)
    history.record(USER, [4, 5], T0 + 1)
    assert history.served_ids(USER, now_ms=T0 + 2) == {2, 3, 4, 5}
    assert len(table[USER]) == 4 * 16


def test_serving_again_refreshes_an_id(table: dict[int, bytes]) -> None:
    history = ServedHistory(table, max_ids=3, ttl_ms=10 * HOUR)
    history.record(USER, [1, 2, 3], T0)
    history.record(USER, [1], T0 + 5 * HOUR)  # 1 is now the newest
    history.record(USER, [4], T0 + 6 * HOUR)
    assert history.served_ids(USER, now_ms=T0 + 6 * HOUR) == {1, 3, 4}
    assert history.served_ids(USER, now_ms=T0 + 12 * HOUR) == {1, 4}


def test_ids_expire_after_the_ttl(table: dict[int, bytes]) -> None:
    history = ServedHistory(table, ttl_ms=2 * HOUR)
    history.record(USER, [1, 2], T0)
    assert history.served_ids(USER, now_ms=T0 + 2 * HOUR) == {1, 2}
    assert history.served_ids(USER, now_ms=T0 + 2 * HOUR + 1) == set()
    history.record(USER, [3], T0 + 3 * HOUR)  # expired entries are dropped from storage too
    assert len(table[USER]) == 16
    assert history.served_ids(USER, now_ms=T0 + 3 * HOUR) == {3}


def test_default_clock_expires_ancient_records(table: dict[int, bytes]) -> None:
    history = ServedHistory(table)
    history.record(USER, [1], 0)
    assert history.served_ids(USER) == set()


def test_an_out_of_date_record_does_not_resurrect_expired_ids(table: dict[int, bytes]) -> None:
    history = ServedHistory(table, ttl_ms=HOUR)
    history.record(USER, [1], T0 + 3 * HOUR)
    history.record(USER, [2], T0)  # a late, already expired record
    assert history.served_ids(USER, now_ms=T0 + 3 * HOUR) == {1}
    assert len(table[USER]) == 16


def test_empty_record_leaves_no_entry(table: dict[int, bytes]) -> None:
    history = ServedHistory(table)
    history.record(USER, [], T0)
    assert USER not in table
