"""Per-head probability calibration: fitted on logged outcomes, saved in the checkpoint, applied at serving.

Each of the 19 heads gets its own monotone map from the model's probability to the observed rate, fitted by
isotonic regression (scikit-learn) on (prediction, outcome) pairs of logged impressions. A head with too few
positives to fit is left as it is (identity). The map is stored as its breakpoints (x ascending, y) and
applied by linear interpolation, clipped at both ends (`numpy.interp`), so serving needs no scikit-learn
object: the checkpoint's JSON meta carries it under "calibration".

Metrics (all per action, over the impressions given):
- reliability curve: predictions in `bins` equal-width bins, each bin's mean prediction vs observed rate;
- expected calibration error (ECE): sum over bins of (bin share) x |mean prediction - observed rate|;
- rate error: mean prediction - observed rate (the bias of the predicted engagement count).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from topics.actions import PHOENIX_ACTIONS

MIN_POSITIVES = 20
META_KEY = "calibration"


@dataclass(frozen=True)
class HeadMap:
    x: np.ndarray  # ascending breakpoints (model probability)
    y: np.ndarray  # calibrated probability at each breakpoint


@dataclass(frozen=True)
class Calibration:
    kind: str
    heads: Mapping[str, HeadMap]  # actions without a map are served as the model predicts
    fitted_on: int  # impressions

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """[N, 19] -> [N, 19] calibrated (a new array)."""
        out = np.array(probabilities, dtype=np.float32, copy=True)
        for a, name in enumerate(PHOENIX_ACTIONS):
            head = self.heads.get(name)
            if head is not None:
                out[:, a] = np.interp(out[:, a], head.x, head.y)
        return out

    def to_meta(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fitted_on": self.fitted_on,
            "heads": {name: {"x": h.x.tolist(), "y": h.y.tolist()} for name, h in self.heads.items()},
        }

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> "Calibration | None":
        """The calibration in a checkpoint's meta, or None when it has none."""
        value = meta.get(META_KEY)
        if not value:
            return None
        heads = {}
        for name, head in value["heads"].items():
            if name not in PHOENIX_ACTIONS:
                raise ValueError(f"calibration for unknown action {name!r}")
            x, y = np.asarray(head["x"], np.float64), np.asarray(head["y"], np.float64)
            if x.shape != y.shape or x.ndim != 1 or not len(x) or np.any(np.diff(x) < 0):
                raise ValueError(f"calibration of {name}: breakpoints must be one ascending list with a y each")
            heads[name] = HeadMap(x, y)
        return cls(kind=str(value["kind"]), heads=heads, fitted_on=int(value["fitted_on"]))

    def describe(self) -> str:
        return f"{self.kind} on {len(self.heads)} heads ({self.fitted_on} impressions)"


def fit_isotonic(probabilities: np.ndarray, labels: np.ndarray, min_positives: int = MIN_POSITIVES) -> Calibration:
    """Isotonic maps per head from predictions [N, 19] and 0/1 outcomes [N, 19]."""
    from sklearn.isotonic import IsotonicRegression

    heads = {}
    for a, name in enumerate(PHOENIX_ACTIONS):
        y = labels[:, a]
        if y.sum() < min_positives or y.sum() == len(y):
            continue
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(probabilities[:, a], y)
        heads[name] = HeadMap(np.asarray(model.X_thresholds_, np.float64), np.asarray(model.y_thresholds_, np.float64))
    return Calibration("isotonic", heads, len(labels))


def reliability(predictions: np.ndarray, outcomes: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """One head's reliability curve: per non-empty bin, mean prediction, observed rate and count."""
    index = np.minimum((predictions * bins).astype(int), bins - 1)
    mean, rate, count = [], [], []
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            mean.append(float(predictions[in_bin].mean()))
            rate.append(float(outcomes[in_bin].mean()))
            count.append(int(in_bin.sum()))
    return {"mean_prediction": mean, "observed_rate": rate, "count": count}


def expected_calibration_error(predictions: np.ndarray, outcomes: np.ndarray, bins: int = 10) -> float:
    curve = reliability(predictions, outcomes, bins)
    total = sum(curve["count"])
    return float(sum(n / total * abs(m - r) for m, r, n in
                     zip(curve["mean_prediction"], curve["observed_rate"], curve["count"], strict=True)))


def calibration_report(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Per action: positives, observed rate, mean prediction, rate error, ECE and the reliability curve; plus
    the impression-weighted mean ECE over actions with positives."""
    per_action = {}
    for a, name in enumerate(PHOENIX_ACTIONS):
        p, y = probabilities[:, a].astype(np.float64), labels[:, a].astype(np.float64)
        per_action[name] = {
            "positives": int(y.sum()),
            "observed_rate": float(y.mean()),
            "mean_prediction": float(p.mean()),
            "rate_error": float(p.mean() - y.mean()),
            "ece": expected_calibration_error(p, y, bins),
            "reliability": reliability(p, y, bins),
        }
    scored = [v["ece"] for v in per_action.values() if v["positives"]]
    return {"impressions": len(labels), "mean_ece": float(np.mean(scored)) if scored else 0.0,
            "actions": per_action}
