from pathlib import Path

import pytest

from streams.config import ConfigError, load_config
from topics.actions import ACTIONS


def test_defaults_load_with_the_documented_values():
    cfg = load_config(env={})
    assert list(cfg.weights) == list(ACTIONS)
    assert cfg.weights["reply"] == 1.6 and cfg.weights["report"] == -6.0 and cfg.weights["dwell_time"] == 0.1
    assert (cfg.diversity.decay, cfg.diversity.floor, cfg.oon.factor) == (0.7, 0.1, 0.8)
    assert (cfg.sources.thunder_max, cfg.sources.retrieval_max) == (500, 500)
    assert cfg.weight_vector().shape == (19,)


def test_environment_overrides_every_kind_of_value():
    cfg = load_config(
        env={
            "FORYOU_WEIGHTS_REPLY": "2.0",
            "FORYOU_WEIGHTS_SHARE_VIA_DM": "0.9",
            "FORYOU_DIVERSITY_DECAY": "0.5",
            "FORYOU_FILTERS_SERVED_FILTER_ALL_REQUESTS": "yes",
            "FORYOU_VISIBILITY_ALLOWED_SAFETY_LABELS": "a, b",
            "FORYOU_RESULTS_DEFAULT_SIZE": "12",
            "FORYOU_STATE_DIR": "/tmp/elsewhere",  # another component's setting: ignored
        }
    )
    assert cfg.weights["reply"] == 2.0 and cfg.weights["share_via_dm"] == 0.9
    assert cfg.diversity.decay == 0.5
    assert cfg.filters.served_filter_all_requests is True
    assert cfg.visibility.allowed_safety_labels == ("a", "b")
    assert cfg.results.default_size == 12


def test_user_file_then_environment(tmp_path: Path):
    user = tmp_path / "foryou.toml"
    user.write_text("[oon]\nfactor = 0.5\n[weights]\nfavorite = 3\n")
    cfg = load_config(env={"FORYOU_CONFIG": str(user), "FORYOU_OON_FACTOR": "0.6"})
    assert cfg.oon.factor == 0.6  # the environment wins over the file
    assert cfg.weights["favorite"] == 3.0  # an integer is accepted for a float
    assert load_config(user, env={}).oon.factor == 0.5


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[weights]\nfavourite = 1.0\n", {}, "unknown key weights.favourite"),
        ("[colours]\nred = 1\n", {}, "unknown section [colours]"),
        ("[diversity]\ndecay = 1.5\n", {}, "diversity.decay must be in (0, 1]"),
        ("[diversity]\ndecay = 0.0\n", {}, "diversity.decay must be in (0, 1]"),
        ("[diversity]\nfloor = -0.1\n", {}, "diversity.floor must be in [0, 1]"),
        ('[oon]\nfactor = "high"\n', {}, "oon.factor: expected float, got str"),
        ("[filters]\nserved_filter_all_requests = 1\n", {}, "expected bool"),
        ("[results]\ndefault_size = 1.5\n", {}, "results.default_size: expected int"),
        ("[results]\nmax_size = 5\n", {}, "results.max_size must be >= results.default_size"),
        ("[weights]\nblock_author = 5.0\n", {}, "weights.block_author: a negative action's weight must be <= 0"),
        ("[weights]\nfavorite = -1.0\n", {}, "weights.favorite: a positive action's weight must be >= 0"),
        ("[scoring]\nnegative_scores_offset = 0\n", {}, "negative_scores_offset must be > 0"),
        ("[weights]\nreply = inf\n", {}, "must be a finite number"),
        ("", {"FORYOU_WEIGHTS_REPLLY": "2"}, "unknown key weights.replly"),
        ("", {"FORYOU_SOURCES_THUNDER_MAX": "lots"}, "FORYOU_SOURCES_THUNDER_MAX: expected int"),
        ("", {"FORYOU_FILTERS_SERVED_FILTER_ALL_REQUESTS": "maybe"}, "expected bool"),
        ("[weights\n", {}, "invalid TOML"),
    ],
)
def test_invalid_configuration_is_rejected_with_a_clear_message(tmp_path: Path, toml: str, env: dict, message: str):
    user = tmp_path / "bad.toml"
    user.write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_config(user, env=env)
    assert message in str(raised.value)


def test_every_problem_is_reported_at_once(tmp_path: Path):
    user = tmp_path / "bad.toml"
    user.write_text("[diversity]\ndecay = 2.0\nfloor = 3.0\n")
    with pytest.raises(ConfigError) as raised:
        load_config(user, env={})
    assert "diversity.decay" in str(raised.value) and "diversity.floor" in str(raised.value)


def test_missing_user_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(env={"FORYOU_CONFIG": str(tmp_path / "absent.toml")})
