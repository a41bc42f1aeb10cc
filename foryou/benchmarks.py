"""The benchmark result format shared by every suite: `bench/results/<suite>.json`, a JSON list of
{"name", "metric", "value", "unit", "target", "params", "at"} records."""

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
