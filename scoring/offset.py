"""The negative-score offset of the weighted score (home-mixer's `offset_score`).

The combined score sum(weight * probability) is negative when the predicted negative actions outweigh the
positive ones. It is mapped so that every post with a negative combined score ranks below every post with a
non-negative one, and the final score is never negative:
  combined >= 0:  combined + offset
  combined <  0:  (combined + N) / T * offset, which lies in [0, offset * N / T) within [0, offset),
where N = -(sum of the negative weights) (combined >= -N since probabilities are <= 1) and T = (sum of the
positive weights) + N, as published (the config guarantees the negative actions' weights are the negative
ones). Negative posts keep their order among themselves (the map is increasing).

Later multipliers (author diversity, out-of-network) act within each band, so the guarantee holds:
- a non-negative post has the value above the offset scaled (home-mixer's multiplier-before-offset mode):
  scaling the offset itself could sink it below a negative post;
- a negative post has its whole score scaled (the published `score x multiplier`), kept below the offset.
Both matter: with the 2026-10 weights (report -234, mute -58.8, ...) and a world whose negative actions are far
more frequent than X's, most posts score negative, and leaving them unscaled switched diversity and the
out-of-network factor off for them (measured: author diversity 0.55 instead of 0.85 in the world).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class ScoreOffset:
    offset: float
    negative_sum: float  # N
    total_sum: float  # T

    @classmethod
    def from_weights(cls, weights: Mapping[str, float], offset: float) -> "ScoreOffset":
        negative_sum = -sum(w for w in weights.values() if w < 0)
        positive_sum = sum(w for w in weights.values() if w > 0)
        return cls(offset=offset, negative_sum=negative_sum, total_sum=positive_sum + negative_sum)

    def apply(self, combined: float) -> float:
        if self.total_sum == 0:  # every weight is zero: nothing to rank by
            return max(combined, 0.0)
        if combined < 0:
            return (combined + self.negative_sum) / self.total_sum * self.offset
        return combined + self.offset

    def apply_all(self, combined: np.ndarray) -> np.ndarray:
        """`apply` of every value of a float64 array (the same arithmetic, so the same results)."""
        if self.total_sum == 0:
            clipped: np.ndarray = np.maximum(combined, 0.0)
            return clipped
        negative = (combined + self.negative_sum) / self.total_sum * self.offset
        return np.where(combined < 0, negative, combined + self.offset)

    def scale(self, score: float, multiplier: float) -> float:
        """The score with the multiplier applied within its band (module docstring)."""
        if score < self.offset:
            return min(score * multiplier, math.nextafter(self.offset, 0.0))
        return self.offset + multiplier * (score - self.offset)
