"""Scoring-weight tuning on logged feeds, with an off-policy estimate of what other weights would earn.

Logged data: slates (the posts one request served, in the order served, with the 19 predicted probabilities
and the 19 observed outcomes of each). New weights re-rank each logged slate by sum(weight x probability)
(the weighted score before its monotone offset; diversity and OON multipliers are left out).

Estimator (assumptions stated, as the logs give no propensities): a position-based examination model,
a post at rank r is looked at with probability e(r) = 1 / log2(r + 1) and engaged with, once looked at,
independently of its rank. Then a post the logged policy put at rank r and the new weights put at rank r'
is seen e(r') / e(r) times as often, and the self-normalised importance-weighted estimate (SNIPS) of the
reward per examined impression is sum(w_i x reward_i) / sum(w_i) with w_i = e(r'_i) / e(r_i). Only logged
posts can be re-ranked: the estimate says which order of what was served is best, not what else to serve.
The effective sample size (sum w)^2 / sum w^2 says how far the new ranking moved from the logged one.

Objective: reward = number of positive actions - `negative_penalty` x number of negative actions on the
post. Optimiser: scipy's bounded Powell (the estimate is piecewise constant in the weights, so no
gradients), from the current weights, positive weights in [0, `max_weight`], negative ones in
[-`max_negative`, 0].
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from topics.actions import NEGATIVE_ACTIONS, PHOENIX_ACTIONS

NEGATIVE = np.array([a in NEGATIVE_ACTIONS for a in PHOENIX_ACTIONS])


@dataclass(frozen=True)
class Slates:
    probabilities: np.ndarray  # [S, C, 19]
    labels: np.ndarray  # [S, C, 19] 0/1 outcomes
    mask: np.ndarray  # [S, C] real lines (slates are padded to C)
    logged_rank: np.ndarray  # [S, C] 1-based rank the logged policy gave

    def take(self, index: np.ndarray) -> "Slates":
        return Slates(self.probabilities[index], self.labels[index], self.mask[index], self.logged_rank[index])


def examination(rank: np.ndarray) -> np.ndarray:
    return 1.0 / np.log2(rank + 1.0)


def rewards(labels: np.ndarray, negative_penalty: float) -> np.ndarray:
    reward: np.ndarray = labels[..., ~NEGATIVE].sum(-1) - negative_penalty * labels[..., NEGATIVE].sum(-1)
    return reward


def ranks_under(weights: np.ndarray, slates: Slates) -> np.ndarray:
    """[S, C] 1-based ranks within each slate by descending weighted score (padding last)."""
    scores = np.where(slates.mask, slates.probabilities @ weights, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, scores.shape[1] + 1)[None, :].repeat(len(scores), 0), axis=1)
    return ranks


def snips(weights: np.ndarray, slates: Slates, negative_penalty: float) -> tuple[float, float]:
    """(estimated reward per examined impression, effective sample size) of ranking by `weights`."""
    ratio = np.where(slates.mask, examination(ranks_under(weights, slates)) / examination(slates.logged_rank), 0.0)
    reward = rewards(slates.labels, negative_penalty)
    total = ratio.sum()
    return float((ratio * reward).sum() / total), float(total**2 / (ratio**2).sum())


@dataclass(frozen=True)
class TuningResult:
    start: dict[str, float]
    tuned: dict[str, float]
    start_value: float  # on the evaluation slates
    tuned_value: float
    tuned_ess: float
    logged_value: float  # the logged order itself (ratio 1 everywhere): the plain observed mean
    evaluations: int


def tune_weights(
    fit: Slates,
    evaluate: Slates,
    start: Mapping[str, float],
    *,
    negative_penalty: float = 5.0,
    max_weight: float = 5.0,
    max_negative: float = 20.0,
    max_evaluations: int = 3000,
) -> TuningResult:
    """Weights maximising the SNIPS estimate on `fit`, reported on `evaluate` (held out from the search)."""
    x0 = np.array([start[a] for a in PHOENIX_ACTIONS], np.float64)
    bounds = [(-max_negative, 0.0) if neg else (0.0, max_weight) for neg in NEGATIVE]
    x0 = np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds])
    result = minimize(lambda w: -snips(w, fit, negative_penalty)[0], x0, method="Powell", bounds=bounds,
                      options={"maxfev": max_evaluations, "xtol": 1e-3, "ftol": 1e-6})
    tuned = np.asarray(result.x, np.float64)
    tuned_value, ess = snips(tuned, evaluate, negative_penalty)
    logged_reward = rewards(evaluate.labels, negative_penalty)[evaluate.mask]
    return TuningResult(
        start=dict(zip(PHOENIX_ACTIONS, x0.tolist(), strict=True)),
        tuned=dict(zip(PHOENIX_ACTIONS, tuned.round(4).tolist(), strict=True)),
        start_value=snips(x0, evaluate, negative_penalty)[0],
        tuned_value=tuned_value,
        tuned_ess=ess,
        logged_value=float(logged_reward.mean()),
        evaluations=int(result.nfev),
    )


def weights_toml(weights: Mapping[str, float]) -> str:
    """A FORYOU_CONFIG file setting these weights (streams/defaults.toml's [weights] section)."""
    return "[weights]\n" + "".join(f"{a} = {float(weights[a])!r}\n" for a in PHOENIX_ACTIONS)
