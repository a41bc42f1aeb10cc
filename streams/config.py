"""The For You pipeline's configuration: a preset of `defaults.toml`, an optional user TOML file, environment
overrides.

`defaults.toml` holds two complete presets: `seed-2026-01` (the values of the January 2026 design documents)
and `production-2026-10` (the parameters X published on 2026-10-07, and its newer stages switched on). One
setting chooses the preset: FORYOU_PRESET, else `preset = "..."` in the user file, else the file's default
(production-2026-10). Load once at start with `load_config()`; every problem (unknown preset, section or
key, wrong type, value out of range) is reported together in one `ConfigError`. See defaults.toml for the
meaning of every key.

Environment overrides are `FORYOU_<SECTION>_<KEY>=value` (e.g. FORYOU_WEIGHTS_REPLY=2.0). Only variables
whose <SECTION> is one of this file's sections are read, so the other FORYOU_* settings of the system
(FORYOU_STATE_DIR, FORYOU_POLICY, ...) do not collide; within a known section an unknown key is an error,
which catches typos. Booleans accept true/false/1/0/yes/no, lists are comma-separated.
"""

import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from topics.actions import ACTIONS, NEGATIVE_WEIGHT_ACTIONS
from topics.limits import MAX_RESULTS

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")
USER_CONFIG_ENV = "FORYOU_CONFIG"
PRESET_ENV = "FORYOU_PRESET"
ENV_PREFIX = "FORYOU_"
PRESETS: tuple[str, ...] = ("seed-2026-01", "production-2026-10")
COLD_START_MODES: tuple[str, ...] = ("thompson", "model")


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem found."""


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    vqv_min_duration_ms: int
    negative_scores_offset: float
    mutual_follow_reply_boost: float


@dataclass(frozen=True, slots=True)
class DiversityConfig:
    decay: float
    floor: float


@dataclass(frozen=True, slots=True)
class OonConfig:
    factor: float
    in_network_replies_reposts: bool


@dataclass(frozen=True, slots=True)
class FiltersConfig:
    max_post_age_ms: int
    served_filter_all_requests: bool
    oon_retweet_reply: bool


@dataclass(frozen=True, slots=True)
class VisibilityConfig:
    allowed_safety_labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResultsConfig:
    default_size: int
    selection_size: int


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    thunder_max: int
    retrieval_max: int
    popular_max: int


@dataclass(frozen=True, slots=True)
class ThunderConfig:
    timeline_cap: int
    max_originals_per_author: int
    max_secondary_per_author: int


@dataclass(frozen=True, slots=True)
class PopularConfig:
    per_author: int
    max_age_ms: int
    half_life_ms: int
    author_active_ms: int
    refresh_ms: int


@dataclass(frozen=True, slots=True)
class ColdStartConfig:
    enabled: bool
    mode: str
    max_age_ms: int
    max_author_followers: int
    max_views: int
    target_rank: int
    prior_alpha: float
    prior_beta: float
    shortlist: int


@dataclass(frozen=True, slots=True)
class DppConfig:
    enabled: bool
    theta: float
    window: int
    max_selected: int
    min_residual: float


@dataclass(frozen=True, slots=True)
class ForYouConfig:
    preset: str
    weights: Mapping[str, float]  # action name -> weight, every action of topics.actions.ACTIONS
    scoring: ScoringConfig
    diversity: DiversityConfig
    oon: OonConfig
    filters: FiltersConfig
    visibility: VisibilityConfig
    results: ResultsConfig
    sources: SourcesConfig
    thunder: ThunderConfig
    popular: PopularConfig
    cold_start: ColdStartConfig
    dpp: DppConfig


_SECTION_TYPES: dict[str, type] = {
    "scoring": ScoringConfig,
    "diversity": DiversityConfig,
    "oon": OonConfig,
    "filters": FiltersConfig,
    "visibility": VisibilityConfig,
    "results": ResultsConfig,
    "sources": SourcesConfig,
    "thunder": ThunderConfig,
    "popular": PopularConfig,
    "cold_start": ColdStartConfig,
    "dpp": DppConfig,
}
SECTIONS: tuple[str, ...] = ("weights", *_SECTION_TYPES)


def _key_types(section: str) -> dict[str, Any]:
    if section == "weights":
        return dict.fromkeys(ACTIONS, float)
    hints = typing.get_type_hints(_SECTION_TYPES[section])
    return {f.name: hints[f.name] for f in fields(_SECTION_TYPES[section])}


def _type_name(expected: Any) -> str:
    return "list of strings" if expected == tuple[str, ...] else expected.__name__


def _coerce(value: Any, expected: Any, where: str, errors: list[str]) -> Any:
    """The value as the expected type, or None with an error recorded. TOML already typed the value."""
    ok = False
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            value = float(value)
            if not math.isfinite(value):
                errors.append(f"{where}: must be a finite number, got {value}")
                return None
    elif expected is str:
        ok = isinstance(value, str)
    elif expected == tuple[str, ...]:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        if ok:
            value = tuple(value)
    if not ok:
        errors.append(f"{where}: expected {_type_name(expected)}, got {type(value).__name__} {value!r}")
        return None
    return value


def _parse_env_value(text: str, expected: Any, where: str, errors: list[str]) -> Any:
    """An environment string as the TOML value it stands for (then checked by `_coerce`)."""
    text = text.strip()
    try:
        if expected is bool:
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError(text)
        if expected is int:
            return int(text)
        if expected is float:
            return float(text)
        if expected is str:
            return text
    except ValueError:
        errors.append(f"{where}: expected {_type_name(expected)}, got {text!r}")
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def _merge_layer(raw: dict[str, dict[str, Any]], layer: Mapping[str, Any], origin: str, errors: list[str]) -> None:
    for section, values in layer.items():
        if section not in SECTIONS:
            errors.append(f"{origin}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
            continue
        if not isinstance(values, Mapping):
            errors.append(f"{origin}: [{section}] must be a table")
            continue
        known = _key_types(section)
        for key, value in values.items():
            if key not in known:
                errors.append(f"{origin}: unknown key {section}.{key}")
            else:
                raw[section][key] = value


def _env_layer(env: Mapping[str, str], errors: list[str]) -> dict[str, dict[str, Any]]:
    layer: dict[str, dict[str, Any]] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX) or name in (USER_CONFIG_ENV, PRESET_ENV):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            continue  # another component's FORYOU_* setting
        key = rest[len(section) + 1 :]
        expected = _key_types(section).get(key)
        if expected is None:
            errors.append(f"environment {name}: unknown key {section}.{key}")
            continue
        value = _parse_env_value(text, expected, f"environment {name}", errors)
        if value is not None:
            layer.setdefault(section, {})[key] = value
    return layer


def _check_ranges(cfg: ForYouConfig, errors: list[str]) -> None:
    for name, weight in cfg.weights.items():
        if name in NEGATIVE_WEIGHT_ACTIONS and weight > 0:
            errors.append(f"weights.{name}: a negative action's weight must be <= 0, got {weight}")
        if name not in NEGATIVE_WEIGHT_ACTIONS and weight < 0:
            errors.append(f"weights.{name}: a positive action's weight must be >= 0, got {weight}")
    checks = [
        (cfg.scoring.vqv_min_duration_ms >= 0, "scoring.vqv_min_duration_ms must be >= 0"),
        (cfg.scoring.negative_scores_offset > 0, "scoring.negative_scores_offset must be > 0"),
        (0 < cfg.diversity.decay <= 1, "diversity.decay must be in (0, 1]"),
        (0 <= cfg.diversity.floor <= 1, "diversity.floor must be in [0, 1]"),
        (cfg.oon.factor > 0, "oon.factor must be > 0"),
        (cfg.filters.max_post_age_ms > 0, "filters.max_post_age_ms must be > 0"),
        (cfg.results.default_size >= 1, "results.default_size must be >= 1"),
        (cfg.results.default_size <= MAX_RESULTS, f"results.default_size must be <= {MAX_RESULTS} (topics.limits)"),
        (cfg.sources.thunder_max >= 0, "sources.thunder_max must be >= 0"),
        (cfg.sources.retrieval_max >= 0, "sources.retrieval_max must be >= 0"),
        (cfg.sources.popular_max >= 0, "sources.popular_max must be >= 0"),
        (cfg.scoring.mutual_follow_reply_boost >= 0, "scoring.mutual_follow_reply_boost must be >= 0"),
        (cfg.results.selection_size >= 0, "results.selection_size must be >= 0"),
        (cfg.thunder.timeline_cap >= 1, "thunder.timeline_cap must be >= 1"),
        (cfg.thunder.max_originals_per_author >= 0, "thunder.max_originals_per_author must be >= 0"),
        (cfg.thunder.max_secondary_per_author >= 0, "thunder.max_secondary_per_author must be >= 0"),
        (cfg.popular.per_author >= 1, "popular.per_author must be >= 1"),
        (cfg.popular.max_age_ms > 0, "popular.max_age_ms must be > 0"),
        (cfg.popular.half_life_ms > 0, "popular.half_life_ms must be > 0"),
        (cfg.popular.author_active_ms > 0, "popular.author_active_ms must be > 0"),
        (cfg.popular.refresh_ms >= 0, "popular.refresh_ms must be >= 0"),
        (cfg.cold_start.mode in COLD_START_MODES, f"cold_start.mode must be one of {', '.join(COLD_START_MODES)}"),
        (cfg.cold_start.max_age_ms > 0, "cold_start.max_age_ms must be > 0"),
        (cfg.cold_start.max_author_followers >= 0, "cold_start.max_author_followers must be >= 0"),
        (cfg.cold_start.max_views >= 0, "cold_start.max_views must be >= 0"),
        (cfg.cold_start.target_rank >= 1, "cold_start.target_rank must be >= 1"),
        (cfg.cold_start.prior_alpha > 0 and cfg.cold_start.prior_beta > 0, "cold_start priors must be > 0"),
        (cfg.cold_start.shortlist >= 1, "cold_start.shortlist must be >= 1"),
        (0 < cfg.dpp.theta < 1, "dpp.theta must be in (0, 1)"),
        (cfg.dpp.window >= 1, "dpp.window must be >= 1"),
        (1 <= cfg.dpp.max_selected <= cfg.dpp.window, "dpp.max_selected must be in [1, dpp.window]"),
        (cfg.dpp.min_residual > 0, "dpp.min_residual must be > 0"),
    ]
    errors.extend(message for ok, message in checks if not ok)


def _build(preset: str, raw: dict[str, dict[str, Any]], errors: list[str]) -> ForYouConfig | None:
    known_problems = len(errors)
    typed: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        typed[section] = {}
        for key, expected in _key_types(section).items():
            if key not in raw[section]:
                errors.append(f"missing key {section}.{key}")
                continue
            value = _coerce(raw[section][key], expected, f"{section}.{key}", errors)
            if value is not None:
                typed[section][key] = value
    if len(errors) > known_problems:  # a key missing or mistyped: no config to check the ranges of
        return None
    return ForYouConfig(
        preset=preset,
        weights=types.MappingProxyType({name: typed["weights"][name] for name in ACTIONS}),
        **{section: cls(**typed[section]) for section, cls in _SECTION_TYPES.items()},
    )


def _read_toml(path: Path, errors: list[str]) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        errors.append(f"{path}: file not found")
    except tomllib.TOMLDecodeError as e:
        errors.append(f"{path}: invalid TOML: {e}")
    return {}


def _preset_name(
    defaults: Mapping[str, Any], user: Mapping[str, Any], env: Mapping[str, str], errors: list[str]
) -> str:
    """FORYOU_PRESET, else the user file's `preset`, else the defaults' (see the module docstring)."""
    for origin, chosen in (("environment " + PRESET_ENV, env.get(PRESET_ENV)), ("user file", user.get("preset"))):
        if chosen is not None and chosen != "":
            if chosen in PRESETS:
                return str(chosen)
            errors.append(f"{origin}: unknown preset {chosen!r} (known: {', '.join(PRESETS)})")
    default = defaults.get("preset")
    if default not in PRESETS:
        errors.append(f"{DEFAULTS_PATH}: preset must be one of {', '.join(PRESETS)}, got {default!r}")
        return PRESETS[-1]
    return str(default)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> ForYouConfig:
    """The chosen preset of defaults.toml, then the user file (`path`, else $FORYOU_CONFIG if set), then
    FORYOU_<SECTION>_<KEY> environment overrides from `env` (default os.environ). Raises ConfigError listing
    every problem."""
    env = os.environ if env is None else env
    errors: list[str] = []
    defaults = _read_toml(DEFAULTS_PATH, errors)
    user_path = path if path is not None else env.get(USER_CONFIG_ENV)
    user = dict(_read_toml(Path(user_path), errors)) if user_path else {}
    preset = _preset_name(defaults, user, env, errors)
    user.pop("preset", None)
    raw: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    _merge_layer(raw, defaults.get(preset, {}), f"{DEFAULTS_PATH} [{preset}]", errors)
    if user_path:
        _merge_layer(raw, user, str(user_path), errors)
    _merge_layer(raw, _env_layer(env, errors), "environment", errors)
    cfg = _build(preset, raw, errors)
    if cfg is not None:
        _check_ranges(cfg, errors)
    if errors or cfg is None:
        raise ConfigError("invalid For You configuration:\n  - " + "\n  - ".join(errors))
    return cfg
