from pathlib import Path

import pytest

from scoring.weighted import weight_vector
from streams.config import ConfigError, load_config
from topics.actions import ACTIONS


def test_the_default_preset_is_the_2026_10_publication():
    cfg = load_config(env={})
    assert cfg.preset == "production-2026-10"
    assert list(cfg.weights) == list(ACTIONS)
    assert (cfg.weights["favorite"], cfg.weights["report"], cfg.weights["share_via_copy_link"]) == (0.5, -234.0, 20.0)
    assert (cfg.weights["not_dwelled"], cfg.weights["click_dwell_time"]) == (-0.02, 0.4)
    assert cfg.scoring.negative_scores_offset == 0.001 and cfg.scoring.mutual_follow_reply_boost == 15.0
    assert (cfg.diversity.decay, cfg.diversity.floor, cfg.oon.factor) == (0.5, 0.25, 0.75)
    assert cfg.oon.in_network_replies_reposts and cfg.filters.served_filter_all_requests
    assert cfg.filters.oon_retweet_reply
    assert (cfg.results.default_size, cfg.results.selection_size) == (35, 50)
    assert (cfg.sources.thunder_max, cfg.sources.retrieval_max, cfg.sources.popular_max) == (1200, 1000, 500)
    assert (cfg.thunder.timeline_cap, cfg.thunder.max_originals_per_author, cfg.thunder.max_secondary_per_author) == (
        5000, 50, 30)
    assert cfg.cold_start.enabled and cfg.dpp.enabled and (cfg.dpp.theta, cfg.dpp.window) == (0.65, 150)
    assert weight_vector(cfg.weights).shape == (len(ACTIONS),)


def test_the_seed_preset_keeps_the_january_values_and_turns_the_new_stages_off():
    cfg = load_config(env={"FORYOU_PRESET": "seed-2026-01"})
    assert cfg.preset == "seed-2026-01"
    assert cfg.weights["reply"] == 1.6 and cfg.weights["report"] == -6.0 and cfg.weights["dwell_time"] == 0.1
    assert all(cfg.weights[name] == 0.0 for name in ("not_dwelled", "video_open", "open_link", "click_dwell_time"))
    assert (cfg.diversity.decay, cfg.diversity.floor, cfg.oon.factor) == (0.7, 0.1, 0.8)
    assert (cfg.sources.thunder_max, cfg.sources.retrieval_max, cfg.sources.popular_max) == (500, 500, 0)
    assert not (cfg.cold_start.enabled or cfg.dpp.enabled or cfg.filters.oon_retweet_reply)
    assert cfg.scoring.mutual_follow_reply_boost == 0.0 and cfg.results.selection_size == 0


def test_the_preset_is_chosen_by_the_user_file_and_overridden_by_the_environment(tmp_path: Path):
    user = tmp_path / "foryou.toml"
    user.write_text('preset = "seed-2026-01"\n[oon]\nfactor = 0.5\n')
    cfg = load_config(user, env={})
    assert cfg.preset == "seed-2026-01" and cfg.oon.factor == 0.5 and cfg.diversity.decay == 0.7
    cfg = load_config(user, env={"FORYOU_PRESET": "production-2026-10"})
    assert cfg.preset == "production-2026-10" and cfg.oon.factor == 0.5 and cfg.diversity.decay == 0.5


def test_an_unknown_preset_is_listed_with_every_other_problem(tmp_path: Path):
    user = tmp_path / "bad.toml"
    user.write_text("[dpp]\ntheta = 1.5\n")
    with pytest.raises(ConfigError) as raised:
        load_config(user, env={"FORYOU_PRESET": "production-2027", "FORYOU_COLD_START_MODE": "greedy"})
    message = str(raised.value)
    assert "unknown preset 'production-2027'" in message and "seed-2026-01" in message
    assert "dpp.theta must be in (0, 1)" in message and "cold_start.mode must be one of" in message


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
        ("[results]\ndefault_size = 501\n", {}, "results.default_size must be <= 500"),
        ("[weights]\nblock_author = 5.0\n", {}, "weights.block_author: a negative action's weight must be <= 0"),
        ("[weights]\nfavorite = -1.0\n", {}, "weights.favorite: a positive action's weight must be >= 0"),
        ("[weights]\nnot_dwelled = 0.1\n", {}, "weights.not_dwelled: a negative action's weight must be <= 0"),
        ("[dpp]\nmax_selected = 151\n", {}, "dpp.max_selected must be in [1, dpp.window]"),
        ('[cold_start]\nmode = 3\n', {}, "cold_start.mode: expected str"),
        ("[thunder]\ntimeline_cap = 0\n", {}, "thunder.timeline_cap must be >= 1"),
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
