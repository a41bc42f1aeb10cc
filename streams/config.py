"""The For You pipeline's configuration: `defaults.toml`, an optional user TOML file, environment overrides.

Load once at start with `load_config()`; every problem (unknown section or key, wrong type, value out of
range) is reported together in one `ConfigError`. See defaults.toml for the meaning of every key.

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

import numpy as np

from topics.actions import ACTIONS, NEGATIVE_ACTIONS

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")
USER_CONFIG_ENV = "FORYOU_CONFIG"
ENV_PREFIX = "FORYOU_"


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem found."""


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    vqv_min_duration_ms: int
    negative_scores_offset: float


@dataclass(frozen=True, slots=True)
class DiversityConfig:
    decay: float
    floor: float


@dataclass(frozen=True, slots=True)
class OonConfig:
    factor: float


@dataclass(frozen=True, slots=True)
class FiltersConfig:
    max_post_age_ms: int
    served_filter_all_requests: bool


@dataclass(frozen=True, slots=True)
class VisibilityConfig:
    allowed_safety_labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResultsConfig:
    default_size: int
    max_size: int


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    thunder_max: int
    retrieval_max: int


@dataclass(frozen=True, slots=True)
class ForYouConfig:
    weights: Mapping[str, float]  # action name -> weight, all 19 actions
    scoring: ScoringConfig
    diversity: DiversityConfig
    oon: OonConfig
    filters: FiltersConfig
    visibility: VisibilityConfig
    results: ResultsConfig
    sources: SourcesConfig

    def weight_vector(self) -> np.ndarray:
        """The weights as a float64 vector in topics.actions.ACTIONS order."""
        return np.array([self.weights[name] for name in ACTIONS], dtype=np.float64)


_SECTION_TYPES: dict[str, type] = {
    "scoring": ScoringConfig,
    "diversity": DiversityConfig,
    "oon": OonConfig,
    "filters": FiltersConfig,
    "visibility": VisibilityConfig,
    "results": ResultsConfig,
    "sources": SourcesConfig,
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
        if not name.startswith(ENV_PREFIX) or name == USER_CONFIG_ENV:
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
        if name in NEGATIVE_ACTIONS and weight > 0:
            errors.append(f"weights.{name}: a negative action's weight must be <= 0, got {weight}")
        if name not in NEGATIVE_ACTIONS and weight < 0:
            errors.append(f"weights.{name}: a positive action's weight must be >= 0, got {weight}")
    checks = [
        (cfg.scoring.vqv_min_duration_ms >= 0, "scoring.vqv_min_duration_ms must be >= 0"),
        (cfg.scoring.negative_scores_offset > 0, "scoring.negative_scores_offset must be > 0"),
        (0 < cfg.diversity.decay <= 1, "diversity.decay must be in (0, 1]"),
        (0 <= cfg.diversity.floor <= 1, "diversity.floor must be in [0, 1]"),
        (cfg.oon.factor > 0, "oon.factor must be > 0"),
        (cfg.filters.max_post_age_ms > 0, "filters.max_post_age_ms must be > 0"),
        (cfg.results.default_size >= 1, "results.default_size must be >= 1"),
        (cfg.results.max_size >= cfg.results.default_size, "results.max_size must be >= results.default_size"),
        (cfg.sources.thunder_max >= 0, "sources.thunder_max must be >= 0"),
        (cfg.sources.retrieval_max >= 0, "sources.retrieval_max must be >= 0"),
    ]
    errors.extend(message for ok, message in checks if not ok)


def _build(raw: dict[str, dict[str, Any]], errors: list[str]) -> ForYouConfig | None:
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
    if errors:
        return None
    return ForYouConfig(
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


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> ForYouConfig:
    """defaults.toml, then the user file (`path`, else $FORYOU_CONFIG if set), then FORYOU_<SECTION>_<KEY>
    environment overrides from `env` (default os.environ). Raises ConfigError listing every problem."""
    env = os.environ if env is None else env
    errors: list[str] = []
    raw: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    _merge_layer(raw, _read_toml(DEFAULTS_PATH, errors), str(DEFAULTS_PATH), errors)
    user_path = path if path is not None else env.get(USER_CONFIG_ENV)
    if user_path:
        _merge_layer(raw, _read_toml(Path(user_path), errors), str(user_path), errors)
    _merge_layer(raw, _env_layer(env, errors), "environment", errors)
    cfg = _build(raw, errors)
    if cfg is not None:
        _check_ranges(cfg, errors)
    if errors or cfg is None:
        raise ConfigError("invalid For You configuration:\n  - " + "\n  - ".join(errors))
    return cfg
