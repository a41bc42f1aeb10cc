from pathlib import Path

import pytest

from phoenix.examples import group_requests
from phoenix.higgs import derived_post_id, higgs_log, main
from phoenix.log import read_log

HIGGS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "higgs"


@pytest.fixture(scope="module")
def higgs_dir() -> Path:
    if not (HIGGS_DIR / "higgs-activity_time.txt.gz").exists():
        pytest.skip(f"Higgs data not found at {HIGGS_DIR} (expected ../shared/data/higgs next to the repo)")
    return HIGGS_DIR


def test_derived_post_ids() -> None:
    start = 1_341_100_800
    assert derived_post_id(88, start) == 88_001
    assert derived_post_id(88, start + 3599) == 88_001
    assert derived_post_id(88, start + 3600) == 88_002


def test_loader_on_a_few_thousand_rows(higgs_dir: Path) -> None:
    log, stats = higgs_log(higgs_dir, max_rows=3000, negatives_per_positive=3, seed=0)
    assert stats.rows == 3000
    # RE rows pair with MT rows at the same second: merged, so there are fewer events than rows.
    assert stats.events < stats.rows - stats.self_rows_dropped
    assert stats.positive_lines + stats.negative_lines == len(log)
    assert all(imp.user_id != imp.author_id for imp in log)
    assert all(imp.ts_ms % 1000 == 0 for imp in log)
    assert {name for imp in log for name in imp.actions} <= {"repost", "reply", "quote"}
    assert any(imp.actions == ("quote", "reply") or imp.actions == ("reply", "quote") for imp in log)
    groups = group_requests(log)
    mixed = [
        g
        for g in groups
        if any(i.engaged for i in g.impressions) and any(not i.engaged for i in g.impressions)
    ]
    assert len(mixed) > 0.9 * len(groups)
    for group in groups:
        # A request is one user at one instant.
        assert {i.user_id for i in group.impressions} == {group.user_id}
        assert {i.ts_ms for i in group.impressions} == {group.ts_ms}


def test_main_writes_a_readable_log(
    higgs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "higgs.jsonl"
    assert main(["--out", str(out), "--max-rows", "2000", "--data-dir", str(higgs_dir)]) == 0
    log = read_log(out)
    assert len(log) > 2000
    assert "rows" in capsys.readouterr().out


def test_main_reports_missing_data(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path / "x.jsonl"), "--data-dir", str(tmp_path)]) == 1
    assert not (tmp_path / "x.jsonl").exists()
