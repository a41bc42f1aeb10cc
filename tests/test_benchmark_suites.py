"""The Kafka-free benchmark suites run end to end in their smallest form and write the documented record
format (no timing is asserted: speed is what the suites report, never what a test checks)."""

import json
import math
from pathlib import Path

import pytest

from foryou import bench_filters, bench_pipeline
from phoenix import bench as phoenix_bench
from phoenix import content_bench

RECORD_KEYS = {"name", "metric", "value", "unit", "target", "params", "at"}


def _records(path: Path) -> list[dict]:
    records = json.loads(path.read_text())
    assert isinstance(records, list) and records
    for r in records:
        assert set(r) == RECORD_KEYS, r
        assert isinstance(r["name"], str) and isinstance(r["metric"], str) and isinstance(r["unit"], str)
        assert isinstance(r["value"], float) and math.isfinite(r["value"]), r
        assert r["target"] is None or isinstance(r["target"], float), r
        assert isinstance(r["params"], dict)
    return records


@pytest.mark.slow
def test_phoenix_suite_quick_writes_the_issue_record_names(tmp_path: Path) -> None:
    out = tmp_path / "phoenix.json"
    assert phoenix_bench.main(["--quick", "--out", str(out)]) == 0
    names = {(r["name"], r["metric"]) for r in _records(out)}
    for count in (32, 256, 1000):
        assert {(f"rank.s128.c{count}", m) for m in ("median_ms", "p99_ms", "gflops")} <= names
    assert ("matmul.peak", "gflops") in names
    for kind in ("exact", "ann"):
        assert {(f"retrieval.{kind}.100k", m) for m in ("median_ms", "recall_at_100")} <= names
    assert ("train.examples_per_s", "examples_per_s") in names


@pytest.mark.slow
def test_phoenix_training_benchmark_alone_keeps_the_other_records(tmp_path: Path) -> None:
    out = tmp_path / "phoenix.json"
    out.write_text(json.dumps([{"name": "rank.s128.c32", "metric": "median_ms", "value": 1.0, "unit": "ms",
                                "target": None, "params": {}, "at": "x"}]))
    assert phoenix_bench.main(["--quick", "--only-train", "--out", str(out)]) == 0
    records = _records(out)
    assert [r["name"] for r in records] == ["rank.s128.c32", "train.examples_per_s"]
    train = records[-1]
    assert train["target"] == 1000.0 and train["params"]["requests_per_s"] > 0


@pytest.mark.slow
def test_pipeline_suite_runs_the_production_pipeline(tmp_path: Path) -> None:
    argv = ["--users", "1", "--followed", "40", "--oon-posts", "400", "--requests", "3", "--warmup", "1",
            "--out-dir", str(tmp_path)]
    assert bench_pipeline.main(argv) == 0
    records = _records(tmp_path / "pipeline.json")
    names = {(r["name"], r["metric"]) for r in records}
    assert {("pipeline.inprocess.c1000", "median_ms"), ("pipeline.inprocess.c1000", "p99_ms")} <= names
    stages = {r["name"] for r in records if r["name"].startswith("pipeline.stage.")}
    assert "pipeline.stage.scorer.PhoenixScorer" in stages and "pipeline.stage.source.Thunder" in stages
    concurrent = [r for r in records if r["name"] == "pipeline.inprocess.c1000.concurrent"]
    assert {(r["metric"], r["params"]["batching"]) for r in concurrent} == {
        (metric, batching) for metric in ("requests_per_s", "p95_ms") for batching in ("on", "off")
    }
    assert all(r["value"] > 0 and len(r["params"]["load_average"]) == 3 for r in concurrent)


@pytest.mark.slow
def test_simulate_suite_writes_the_audience_record(tmp_path: Path) -> None:
    from foryou import bench_simulate

    argv = ["--users", "20", "--authors", "10", "--posts", "3", "--follows", "3", "--history", "8", "--drafts", "1",
            "--out-dir", str(tmp_path)]
    assert bench_simulate.main(argv) == 0
    names = {(r["name"], r["metric"]) for r in _records(tmp_path / "simulate.json")}
    assert {("simulate.audience20", "median_s"), ("simulate.audience20", "cold_s")} <= names


@pytest.mark.slow
def test_content_suite_writes_cost_memory_and_quality(tmp_path: Path) -> None:
    argv = ["--posts", "200", "--batch", "100", "--full-posts", "32", "--out-dir", str(tmp_path)]
    assert content_bench.main(argv) == 0
    records = {r["name"]: r for r in _records(tmp_path / "content.json")}
    assert {"content.embed.per_post_us", "content.embed.full_encoder_per_post_us", "content.table_bytes",
            "content.store_bytes_per_post", "content.topic_nn_accuracy"} <= set(records)
    assert records["content.topic_nn_accuracy"]["value"] > records["content.topic_nn_accuracy"]["params"]["chance"]


@pytest.mark.slow
def test_filters_suite_quick_writes_the_muted_keyword_records(tmp_path: Path) -> None:
    assert bench_filters.main(["--quick", "--out", str(tmp_path)]) == 0
    names = {(r["name"], r["metric"]) for r in _records(tmp_path / "filters.json")}
    assert {("filters.muted_keyword.adversarial", "median_ms"), ("filters.muted_keyword.c1000", "median_ms")} <= names


@pytest.mark.slow
def test_capacity_suite_measures_the_stores_per_post_and_per_user(tmp_path: Path) -> None:
    from foryou import bench_capacity
    from phoenix.content import CONTENT_DIM

    argv = ["--posts", "600", "--batch", "200", "--authors", "40", "--users", "4", "--history", "16",
            "--follows", "20", "--served", "70", "--count-records", "2000", "--out-dir", str(tmp_path)]
    assert bench_capacity.main(argv) == 0
    records = {r["name"]: r for r in _records(tmp_path / "capacity.json")}
    assert set(records) == {
        "capacity.post_replica.bytes_per_post", "capacity.post_replica.raw_bytes_per_post",
        "capacity.post_replica.rss_delta", "capacity.retrieval_index.bytes_per_post",
        "capacity.retrieval_index.rss_bytes_per_post", "capacity.engagement_counts.bytes_per_post",
        "capacity.engagement_counts.records_per_s", "capacity.user_tables.bytes_per_user",
        "capacity.user_tables.raw_bytes_per_user",
    }
    replica = records["capacity.post_replica.raw_bytes_per_post"]
    by_kind = records["capacity.post_replica.bytes_per_post"]["params"]["raw_bytes_per_post_by_kind"]
    # Every live post stores its float16 content vector (and its 9-byte key) beside its body.
    assert by_kind["content_vector"] == 2 * CONTENT_DIM + 9
    assert replica["value"] > by_kind["content_vector"] + by_kind["post_body"]
    assert records["capacity.post_replica.bytes_per_post"]["value"] > 0
    # The index holds at least each post's float32 row and its two int64 ids.
    assert records["capacity.retrieval_index.bytes_per_post"]["value"] >= 4 * 64 + 16
    counts = records["capacity.engagement_counts.records_per_s"]
    assert counts["params"]["records"] == 2000 and 0 < counts["params"]["counted_posts"] <= 600
    # A user holds at least the packed sequence (33 B an entry), follows (8 B) and served ids (16 B).
    raw = records["capacity.user_tables.bytes_per_user"]["params"]["raw_bytes_per_user_by_table"]
    assert raw["actions"] >= 16 * 33 and raw["graph"] >= 20 * 8 and raw["served"] >= 70 * 16
    assert records["capacity.user_tables.raw_bytes_per_user"]["value"] == pytest.approx(sum(raw.values()), abs=1)
