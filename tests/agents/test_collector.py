import gc

import pytest

from agents.collector import tune_collector


@pytest.fixture
def restored_collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_freezes_what_exists_and_spaces_young_collections(restored_collector: None) -> None:
    _, middle, old = gc.get_threshold()
    tune_collector(50_000)
    assert gc.get_threshold() == (50_000, middle, old)
    assert gc.get_freeze_count() > 0


def test_zero_keeps_the_defaults(restored_collector: None) -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    tune_collector(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen
