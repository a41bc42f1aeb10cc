"""Calibration (fit, metrics, checkpoint round trip, serving) and weight tuning with the off-policy estimate."""

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from foryou import calibrate
from phoenix.calibration import Calibration, calibration_report, fit_isotonic
from phoenix.checkpoint import load_checkpoint
from phoenix.config import DEMO
from phoenix.examples import synthetic_log
from phoenix.log import write_log
from phoenix.ranker import Ranker
from phoenix.train import TrainOptions, train
from scoring.phoenix_scorer import PhoenixScorer
from scoring.tuning import Slates, snips, tune_weights, weights_toml
from streams.config import load_config
from streams.result import post_explain
from tests.streams.foryou_fakes import candidate, query
from topics.actions import ACTION_INDEX, PHOENIX_ACTIONS

TINY = dataclasses.replace(DEMO, name="tiny", emb_size=32, num_layers=1, key_size=16, history_len=16,
                           user_vocab=1024, post_vocab=4096, author_vocab=1024, retrieval_dim=16)
FAV = ACTION_INDEX["favorite"]


def _miscalibrated(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Predictions twice the true rate on every head."""
    rng = np.random.default_rng(seed)
    probs = rng.uniform(0, 0.6, size=(n, len(PHOENIX_ACTIONS))).astype(np.float32)
    labels = (rng.random(probs.shape) < probs / 2).astype(np.float32)
    return probs, labels


def test_isotonic_calibration_removes_a_planted_bias() -> None:
    probs, labels = _miscalibrated(20_000)
    calibration = fit_isotonic(probs[:10_000], labels[:10_000])
    before = calibration_report(probs[10_000:], labels[10_000:])
    after = calibration_report(calibration.apply(probs[10_000:]), labels[10_000:])
    assert before["mean_ece"] > 0.1 and after["mean_ece"] < 0.02
    assert before["actions"]["favorite"]["rate_error"] == pytest.approx(0.15, abs=0.01)
    assert abs(after["actions"]["favorite"]["rate_error"]) < 0.01
    # Monotone per head: the order of posts by one head never flips.
    row = np.linspace(0, 0.6, 50, dtype=np.float32)[:, None].repeat(len(PHOENIX_ACTIONS), 1)
    assert np.all(np.diff(calibration.apply(row)[:, FAV]) >= 0)


def test_calibration_round_trips_through_checkpoint_meta_and_refuses_bad_maps() -> None:
    probs, labels = _miscalibrated(5_000)
    calibration = fit_isotonic(probs, labels)
    restored = Calibration.from_meta(orjson.loads(orjson.dumps({"calibration": calibration.to_meta()})))
    assert restored is not None
    np.testing.assert_allclose(restored.apply(probs), calibration.apply(probs), rtol=1e-6)
    assert Calibration.from_meta({}) is None
    with pytest.raises(ValueError, match="ascending"):
        Calibration.from_meta({"calibration": {"kind": "isotonic", "fitted_on": 1,
                                               "heads": {"favorite": {"x": [0.5, 0.1], "y": [0, 1]}}}})
    with pytest.raises(ValueError, match="unknown action"):
        Calibration.from_meta({"calibration": {"kind": "isotonic", "fitted_on": 1, "heads": {"like": {}}}})


def _slates(n: int, seed: int) -> Slates:
    """Replies predict reward; favourite predictions are noise; the logged order was by favourite."""
    rng = np.random.default_rng(seed)
    probs = rng.uniform(0, 1, size=(n, 8, len(PHOENIX_ACTIONS)))
    labels = np.zeros_like(probs)
    labels[..., ACTION_INDEX["reply"]] = rng.random((n, 8)) < probs[..., ACTION_INDEX["reply"]]
    logged = np.argsort(np.argsort(-probs[..., FAV], axis=1), axis=1) + 1
    return Slates(probs, labels, np.ones((n, 8), bool), logged)


def test_weight_tuning_finds_the_predictive_head_out_of_sample() -> None:
    start = {a: 0.0 for a in PHOENIX_ACTIONS} | {"favorite": 1.0, "reply": 0.1}
    result = tune_weights(_slates(400, 0), _slates(400, 1), start, max_evaluations=800)
    assert result.tuned_value > result.start_value + 0.05
    assert result.tuned["reply"] > result.tuned["favorite"]
    start_weights = np.array([start[a] for a in PHOENIX_ACTIONS])
    assert snips(start_weights, _slates(400, 1), 5.0)[0] == pytest.approx(result.start_value)


def test_tuned_weights_file_is_a_valid_config(tmp_path: Path) -> None:
    weights = dict(load_config().weights) | {"reply": 2.5}
    path = tmp_path / "weights.toml"
    path.write_text(weights_toml(weights))
    assert load_config(path, env={}).weights["reply"] == 2.5


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("calibrate")
    log = folder / "log.jsonl"
    write_log(log, synthetic_log(num_users=16, num_authors=16, num_communities=2, requests_per_user=80, seed=0))
    ckpt = folder / "model.ckpt"
    train(log, ckpt, TINY, TrainOptions(steps=150, batch_size=32, learning_rate=1e-2, progress=False,
                                        holdout_fraction=0.4))
    return {"log": log, "ckpt": ckpt, "folder": folder}


def test_calibrate_command_saves_a_calibration_that_serving_applies(
    trained: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out = trained["folder"] / "out"
    argv = ["--checkpoint", str(trained["ckpt"]), "--data", str(trained["log"]), "--out", str(out), "--save",
            "--tune-weights", "--json"]
    assert calibrate.main(argv) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["test_impressions"] > 100 and report["fit_impressions"] > 100
    assert report["mean_ece"]["after"] <= report["mean_ece"]["before"]
    assert 0.0 <= report["pairwise_accuracy"]["before"] <= 1.0
    assert (out / "reliability.png").stat().st_size > 10_000
    assert load_config(out / "weights.toml", env={}).weights  # a valid FORYOU_CONFIG file
    assert report["weight_tuning"]["tuned_value"] >= report["weight_tuning"]["start_value"] - 1e-9
    assert "calibration" in load_checkpoint(trained["ckpt"]).meta
    assert "mean ECE" in calibrate.summary_line(report)

    ranker = Ranker.from_checkpoint(trained["ckpt"], candidate_buckets=(32,))
    assert ranker.calibration is not None and ranker.version == report["saved_version"]
    candidates = [candidate(5, 3), candidate(6, 4)]
    updates = asyncio.run(PhoenixScorer(ranker).score(query(), candidates))
    raw = ranker.score(1, (), [(5, 3), (6, 4)], created_at_ms=[c.created_at_ms for c in candidates],
                       now_ms=query().now_ms)
    np.testing.assert_allclose(np.array(updates["raw_phoenix_scores"]), raw, rtol=1e-6)
    np.testing.assert_allclose(np.array(updates["phoenix_scores"]), ranker.calibration.apply(raw), rtol=1e-6)
    explained = post_explain(dataclasses.replace(candidates[0], phoenix_scores=updates["phoenix_scores"][0],
                                                raw_phoenix_scores=updates["raw_phoenix_scores"][0]))
    assert explained.to_dict()["raw_probabilities"] is not None


def test_demo_calibration_line(trained: dict[str, Any]) -> None:
    from foryou.demo_product import calibration_line

    line = calibration_line(trained["ckpt"], trained["log"], trained["folder"] / "demo")
    assert line.startswith("calibration (isotonic") and "mean ECE" in line and "reliability.png" in line
