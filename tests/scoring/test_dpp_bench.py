"""The dpp suite runs in its smallest form and writes the documented record format."""

from pathlib import Path

import orjson

from scoring import bench


def test_dpp_suite_writes_the_c150_record(tmp_path: Path) -> None:
    assert bench.main(["--runs", "3", "--warmup", "1", "--dim", "64", "--out-dir", str(tmp_path)]) == 0
    records = orjson.loads((tmp_path / "dpp.json").read_bytes())
    median = next(r for r in records if (r["name"], r["metric"]) == ("dpp.c150", "median_ms"))
    assert median["target"] == 5.0 and median["unit"] == "ms" and median["value"] > 0
    assert median["params"]["selected"] == 50 and median["params"]["window"] == 150
    assert set(median) == {"name", "metric", "value", "unit", "target", "params", "at"}
