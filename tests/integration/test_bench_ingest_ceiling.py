"""`foryou bench ingest-ceiling` drains the real broker with each of its no-op consumers and writes the
documented record format (no speed is asserted: the suite reports it)."""

import json
from pathlib import Path

import pytest

from foryou import bench_ingest_ceiling


@pytest.mark.slow
def test_each_consumer_drains_every_record(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "ingest.json"
    assert bench_ingest_ceiling.main(["--events", "3000", "--out", str(out)]) == 0
    records = {r["name"]: r for r in json.loads(out.read_text())}
    assert set(records) == {
        "ingest.ceiling.faust_take", "ingest.ceiling.faust_noack_take", "ingest.ceiling.faust_each",
        "ingest.ceiling.aiokafka_getmany", "ingest.ceiling.librdkafka_batch",
    }
    for entry in records.values():
        assert entry["value"] > 0 and entry["unit"] == "events/s" and entry["params"]["events"] == 3000
