import orjson

from stores import bench


def test_bench_writes_both_records(tmp_path) -> None:
    out = tmp_path / "stores.json"
    argv = ["--posts", "3000", "--authors", "300", "--following", "50", "--queries", "3", "--out", str(out)]
    assert bench.main(argv) == 0
    records = orjson.loads(out.read_bytes())
    assert [record["name"] for record in records] == [
        "stores.post_store.apply",
        "stores.post_store.recent_posts.f500",
    ]
    for record in records:
        assert set(record) == {"name", "metric", "value", "unit", "target", "params", "at"}
        assert record["target"] is None
        assert record["value"] > 0
    assert records[1]["params"]["following"] == 50
    assert records[1]["params"]["mean_returned"] > 0
