"""The benchmark result format shared by every suite: `bench/results/<suite>.json`, a JSON list of
{"name", "metric", "value", "unit", "target", "params", "at"} records."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

RESULTS_DIR = Path(__file__).resolve().parent.parent / "bench" / "results"


def record(name: str, metric: str, value: float, unit: str, target: float | None = None, **params: Any) -> dict:
    return {
        "name": name,
        "metric": metric,
        "value": float(value),
        "unit": unit,
        "target": target,
        "params": params,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_results(suite: str, records: list[dict], results_dir: Path = RESULTS_DIR) -> Path:
    """Replace the suite's file with `records` (written whole, then renamed: never half a file)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{suite}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(records, option=orjson.OPT_INDENT_2) + b"\n")
    tmp.replace(path)
    return path


# The params that tell two records of one name apart in a file that several runs add to (world.json).
IDENTITY_PARAMS = ("policy", "preset")


def _identity(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    params = entry.get("params") or {}
    return (entry["name"], *(params.get(key) for key in IDENTITY_PARAMS))


def merge_results(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Merge `records` into the JSON list at `path`: a record with the same name and identifying params
    (`IDENTITY_PARAMS`) is replaced, the others are kept."""
    path = Path(path)
    new = list(records)
    replaced = {_identity(entry) for entry in new}
    existing: Sequence[Mapping[str, Any]] = orjson.loads(path.read_bytes()) if path.exists() else []
    merged = [entry for entry in existing if _identity(entry) not in replaced] + new
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(merged, option=orjson.OPT_INDENT_2) + b"\n")
    tmp.replace(path)
    return path
