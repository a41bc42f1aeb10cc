import dataclasses
import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from phoenix.config import DEMO
from phoenix.evaluate import bench_records, evaluate, format_table, main
from phoenix.examples import synthetic_log
from phoenix.log import write_log
from phoenix.train import TrainOptions, train

TINY = dataclasses.replace(
    DEMO,
    name="tiny",
    emb_size=32,
    num_layers=1,
    key_size=16,
    history_len=16,
    user_vocab=1024,
    post_vocab=4096,
    author_vocab=1024,
    retrieval_dim=16,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny model trained on a log where users favour the authors of their own community (of two)."""
    folder = tmp_path_factory.mktemp("eval")
    log = folder / "log.jsonl"
    write_log(log, synthetic_log(num_users=16, num_authors=16, num_communities=2, requests_per_user=80, seed=0))
    ckpt = folder / "model.ckpt"
    options = TrainOptions(steps=250, batch_size=32, learning_rate=1e-2, progress=False)
    _, meta = train(log, ckpt, TINY, options)
    return {"log": log, "ckpt": ckpt, "meta": meta, "report": evaluate(ckpt, log)}


def test_model_beats_both_baselines_on_the_planted_signal(trained: dict[str, Any]) -> None:
    metrics = trained["report"]["metrics"]
    model, popularity, random = metrics["model"], metrics["popularity"], metrics["random"]
    # Every author is shown equally often, so popularity is near chance; the community signal is not.
    for key in ("ndcg10", "pairwise_accuracy"):
        assert model[key] > popularity[key] + 0.1, key
        assert model[key] > random[key] + 0.1, key
    assert model["auc"]["favorite"] > max(popularity["auc"]["favorite"], random["auc"]["favorite"]) + 0.1
    assert model["recall10"] > popularity["recall10"]


def test_evaluation_uses_the_training_split(trained: dict[str, Any]) -> None:
    report = trained["report"]
    assert report["data_matches_training"] is True
    assert report["split_ts_ms"] == trained["meta"]["split_ts_ms"]
    held_out = report["held_out"]
    assert held_out["examples"] == trained["meta"]["held_out_examples"]
    assert 0 < held_out["engaged_lines"] < held_out["lines"]
    assert held_out["retrieval_corpus"] <= 16 * 3  # distinct (post, author) pairs shown in the held-out part
    for baseline in ("model", "popularity", "random"):
        assert 0.0 <= report["metrics"][baseline]["recall10"] <= 1.0
        assert report["metrics"][baseline]["recall100"] == 1.0  # the corpus is smaller than 100


def test_bench_records(trained: dict[str, Any]) -> None:
    records = bench_records(trained["report"], "synthetic")
    names = {r["name"] for r in records}
    assert {"eval.synthetic.ndcg10", "eval.synthetic.auc.favorite", "eval.synthetic.recall100"} <= names
    assert {r["params"]["baseline"] for r in records} == {"model", "popularity", "random"}
    for record in records:
        assert set(record) == {"name", "metric", "value", "unit", "target", "params", "at"}
        assert record["target"] is None and not math.isnan(record["value"])
    assert "popularity" in format_table(trained["report"])


def test_main_writes_json(trained: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, bench = tmp_path / "report.json", tmp_path / "bench.json"
    argv = ["--checkpoint", str(trained["ckpt"]), "--data", str(trained["log"]), "--out", str(out)]
    assert main([*argv, "--bench", str(bench), "--bench-name", "synthetic"]) == 0
    report = orjson.loads(out.read_bytes())
    assert report["metrics"]["model"]["ndcg10"] == pytest.approx(trained["report"]["metrics"]["model"]["ndcg10"])
    assert len(orjson.loads(bench.read_bytes())) == len(bench_records(trained["report"], "synthetic"))
    assert "ndcg10" in capsys.readouterr().out


def test_other_log_gets_its_own_split(trained: dict[str, Any], tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    write_log(other, synthetic_log(num_users=16, num_authors=16, num_communities=2, requests_per_user=20, seed=9))
    report = evaluate(trained["ckpt"], other)
    assert report["data_matches_training"] is False
    assert report["split_ts_ms"] != trained["meta"]["split_ts_ms"]


def test_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--checkpoint", str(tmp_path / "none.ckpt"), "--data", str(tmp_path / "none.jsonl")]) == 1
    assert "error" in capsys.readouterr().err
