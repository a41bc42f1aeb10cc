import contextlib
import dataclasses
import io
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from phoenix import train as train_module
from phoenix.checkpoint import load_checkpoint
from phoenix.config import DEMO
from phoenix.examples import synthetic_log
from phoenix.log import Impression, file_sha256, write_log
from phoenix.train import ProgressBar, TrainOptions, main, prepare, total_steps_for

TINY = dataclasses.replace(
    DEMO,
    name="tiny",
    emb_size=16,
    num_layers=1,
    key_size=8,
    history_len=8,
    user_vocab=256,
    post_vocab=1024,
    author_vocab=256,
    retrieval_dim=8,
)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One short training run through the CLI (the only compile in this file)."""
    folder = tmp_path_factory.mktemp("train")
    log = folder / "log.jsonl"
    write_log(log, synthetic_log(num_users=12, num_authors=10, requests_per_user=12, seed=2))
    out = folder / "model.ckpt"
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        # The CLI only knows the named configs; a tiny one stands in for "demo" to keep the test fast.
        patch.setitem(train_module.CONFIGS, "demo", TINY)
        argv = ["--data", str(log), "--out", str(out), "--steps", "30", "--batch-size", "8"]
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(argv)
    return {"code": code, "log": log, "out": out, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


def test_progress_bar_draws_to_the_end() -> None:
    stream = io.StringIO()
    bar = ProgressBar(10, stream=stream, width=10)
    bar.update(10, "loss 0.5")
    text = stream.getvalue()
    assert text.startswith("\r[##########] 10/10") and "loss 0.5" in text and text.endswith("\n")


def test_total_steps() -> None:
    assert total_steps_for(TrainOptions(steps=7), 1000) == 7
    assert total_steps_for(TrainOptions(epochs=2.0, batch_size=10), 95) == 19
    assert total_steps_for(TrainOptions(batch_size=10), 95) == 10  # default: one epoch


def test_train_part_is_strictly_before_the_held_out_part() -> None:
    data = prepare(synthetic_log(seed=4), 8, 0.1, TrainOptions().negatives)
    assert max(ex.ts_ms for ex in data.train_examples) < data.split_ts_ms
    assert min(ex.ts_ms for ex in data.held_out_examples) >= data.split_ts_ms
    assert data.sampling is None  # the synthetic log has its own non-engaged lines
    share = len(data.held_out_examples) / (len(data.held_out_examples) + len(data.train_examples))
    assert 0.08 < share < 0.12


def test_negatives_are_sampled_when_the_log_has_none() -> None:
    engaged_only = [
        Impression(i.user_id, i.post_id, i.author_id, i.ts_ms, i.surface, i.actions, None)
        for i in synthetic_log(num_users=12, num_authors=10, requests_per_user=12, seed=5)
        if i.engaged
    ]
    options = TrainOptions()
    data = prepare(engaged_only, 8, 0.1, options.negatives)
    assert data.sampling == options.negatives
    assert any(not imp.engaged for imp in data.impressions)
    assert all(imp.request_id is not None for imp in data.impressions)


def test_cli_trains_and_saves_a_checkpoint_with_meta(cli_run: dict[str, Any]) -> None:
    assert cli_run["code"] == 0
    ckpt = load_checkpoint(cli_run["out"])
    assert ckpt.cfg == TINY
    assert ckpt.version in cli_run["stdout"]
    meta = ckpt.meta
    assert meta["data_sha256"] == file_sha256(cli_run["log"])
    assert meta["steps"] == 30 and meta["history_slots"] == 8
    assert meta["negatives_sampled"] is None
    assert isinstance(meta["split_ts_ms"], int)
    curve = np.array(meta["loss_curve"])
    assert curve.shape[1] == 3 and curve[-1, 0] == 30
    assert np.isfinite(curve).all()
    assert curve[-1, 1] < curve[0, 1]  # the ranker loss falls within 30 steps
    assert not list(cli_run["out"].parent.glob("*.tmp"))  # the atomic write left no temp file


def test_cli_progress_bar_on_stderr(cli_run: dict[str, Any]) -> None:
    assert "30/30" in cli_run["stderr"] and "rank" in cli_run["stderr"]


def test_main_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "x.ckpt")]) == 1
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "x.ckpt").exists()
    with pytest.raises(SystemExit):
        main(["--data", "a", "--out", "b", "--steps", "3", "--epochs", "1"])


def test_a_training_part_without_negatives_is_refused_not_trained_to_the_base_rate() -> None:
    log = synthetic_log(num_users=12, num_authors=10, requests_per_user=12, seed=5)
    split = sorted(imp.ts_ms for imp in log)[int(len(log) * 0.8)]
    # Non-engaged lines only in the (later) held-out part: the log as a whole has negatives, the train part none.
    lines = [imp for imp in log if imp.ts_ms >= split or imp.positive]
    with pytest.raises(train_module.NoNegativesError, match="no line without a positive action"):
        prepare(lines, 8, 0.1, TrainOptions().negatives, split_ts_ms=split)


def test_training_starts_with_a_silent_post_table() -> None:
    from phoenix.model import init_params

    start = train_module.initial_params(TINY, seed=3)
    reference = init_params(TINY, jax.random.PRNGKey(3))
    for module, leaves in reference.items():
        for name, value in leaves.items():
            expected = np.zeros_like(value) if name == "post_table" else np.asarray(value)
            np.testing.assert_array_equal(np.asarray(start[module][name]), expected, err_msg=f"{module}/{name}")


def test_early_stopping_keeps_the_params_of_the_best_validation_loss() -> None:
    data = prepare(synthetic_log(num_users=12, num_authors=10, requests_per_user=20, seed=3), 8, 0.1,
                   TrainOptions().negatives, validation_fraction=0.2)
    # The validation part is the latest of the train part, and nothing of it is trained on.
    assert data.validation_examples
    assert max(ex.ts_ms for ex in data.train_examples) < min(ex.ts_ms for ex in data.validation_examples)
    assert max(ex.ts_ms for ex in data.validation_examples) < data.split_ts_ms
    # A learning rate this large overfits 12 users within a few dozen steps.
    options = TrainOptions(steps=200, batch_size=8, learning_rate=3e-2, eval_every=10, patience=2, progress=False)
    result = train_module.train_params(TINY, data, options)
    steps, losses = zip(*result.validation_curve, strict=True)
    assert all(step % 10 == 0 for step in steps)
    best = int(np.argmin(losses))
    assert result.best_step == steps[best]
    if result.steps < 200:  # stopped: the last `patience` measurements were no better than the best
        assert result.steps - result.best_step >= 20 and min(losses[best + 1 :]) >= losses[best]
    loss = train_module.make_validation_loss(TINY, options)
    batches = train_module._validation_batches(TINY, data, options, 8)
    kept = np.mean([float(loss(result.params, batch)) for batch in batches])
    assert kept == pytest.approx(losses[best], rel=1e-4)


def test_id_dropout_hides_whole_ids_and_nothing_else() -> None:
    data = prepare(synthetic_log(seed=5), 8, 0.1, TrainOptions().negatives)
    rng = np.random.default_rng(0)
    inputs = train_module.training_inputs(TINY, data.train_examples[:64], data.history, 8, 8, rng)
    none = train_module.drop_ids(inputs, 0.0, rng)
    half = train_module.drop_ids(inputs, 0.5, rng)
    every = train_module.drop_ids(inputs, 1.0, rng)
    def ids(batch: dict[str, Any]) -> dict[str, np.ndarray]:
        history = {f"history.{name}": getattr(batch["history"], name) for name in train_module._HISTORY_ID_HASHES}
        return {**{name: batch[name] for name in train_module._ID_HASHES}, **history}

    for name, original in ids(inputs["batch"]).items():
        np.testing.assert_array_equal(ids(none["batch"])[name], original)
        assert not ids(every["batch"])[name].any()
        hidden = (ids(half["batch"])[name] == 0).all(-1) & (original != 0).all(-1)
        kept = (ids(half["batch"])[name] == original).all(-1)
        assert (hidden | kept).all()  # an id keeps all its hashes or loses all of them
        assert 0.3 < hidden.sum() / max((original != 0).all(-1).sum(), 1) < 0.7
    np.testing.assert_array_equal(every["batch"]["candidate_mask"], inputs["batch"]["candidate_mask"])
    for name in ("mask", "actions"):
        np.testing.assert_array_equal(
            getattr(every["batch"]["history"], name), getattr(inputs["batch"]["history"], name)
        )
    np.testing.assert_array_equal(every["labels"], inputs["labels"])


def test_id_dropout_is_on_by_default_only_for_a_model_with_content() -> None:
    with_content = dataclasses.replace(TINY, content_dim=4)
    assert train_module.id_dropout_for(TINY, TrainOptions()) == 0.0  # ids are all it has
    assert train_module.id_dropout_for(with_content, TrainOptions()) == train_module.CONTENT_ID_DROPOUT
    assert train_module.id_dropout_for(TINY, TrainOptions(id_dropout=0.2)) == 0.2
    assert train_module.id_dropout_for(with_content, TrainOptions(id_dropout=0.0)) == 0.0
