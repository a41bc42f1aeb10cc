from pathlib import Path

import jax
import numpy as np
import pytest

from phoenix import model
from phoenix.checkpoint import load_checkpoint, read_version, save_checkpoint
from phoenix.config import PhoenixConfig

TINY = PhoenixConfig(
    name="tiny",
    emb_size=16,
    num_layers=1,
    num_q_heads=2,
    num_kv_heads=1,
    key_size=8,
    widening_factor=2.0,
    history_len=8,
    user_vocab=31,
    post_vocab=61,
    author_vocab=37,
    retrieval_dim=4,
    hash_seed=9,
)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    params = model.init_params(TINY, jax.random.PRNGKey(0))
    meta = {"step": 12, "loss": 0.25, "note": "hi"}
    path = tmp_path / "ckpt" / "phoenix.npz"
    version = save_checkpoint(path, params, TINY, meta)
    ckpt = load_checkpoint(path)
    assert ckpt.version == version == read_version(path)
    assert version.startswith("tiny-")
    assert ckpt.cfg == TINY
    assert ckpt.meta == meta
    assert ckpt.params.keys() == params.keys()
    for module, leaves in params.items():
        assert ckpt.params[module].keys() == leaves.keys()
        for name, value in leaves.items():
            expected = np.asarray(value)
            assert ckpt.params[module][name].dtype == expected.dtype
            assert ckpt.params[module][name].tobytes() == expected.tobytes()
    assert not list(path.parent.glob(".ckpt-*"))  # no temporary file left behind


def test_new_params_give_new_version(tmp_path: Path) -> None:
    path = tmp_path / "p.npz"
    first = save_checkpoint(path, model.init_params(TINY, jax.random.PRNGKey(0)), TINY, {})
    second = save_checkpoint(path, model.init_params(TINY, jax.random.PRNGKey(1)), TINY, {})
    assert first != second
    assert read_version(path) == second


def test_unknown_config_field_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown"):
        PhoenixConfig.from_dict({**TINY.to_dict(), "bogus": 1})
