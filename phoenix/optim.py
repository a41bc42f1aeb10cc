"""Optimiser recipes for Phoenix training (optax), chosen by name.

- "adamw": AdamW on every parameter (warmup then cosine decay of the learning rate).
- "muon": the published recipe: Muon (optax.contrib.muon; Newton-Schulz orthogonalised momentum) for the
  dense layers, whose non-matrix leaves (norm scales, biases) it passes to its internal AdamW, and row-wise
  AdaGrad for the embedding tables (every parameter named `*_table`).
- "adamw+adagrad": AdamW for the dense layers, row-wise AdaGrad for the tables.

Why row-wise AdaGrad for tables: a hashed row is touched only by the few requests whose ids hash to it,
so its gradient is zero on most steps. Adam's moments decay on those steps and a rare row's next update
is as large as a frequent row's; AdaGrad's accumulator only grows when the row gets gradient, so rows seen
often settle and rows seen rarely still move. Row-wise (one accumulator per row, the mean of the squared
gradient over the row) is the published variant: D times less state than element-wise AdaGrad or Adam's
two moments, which matters for tables that are most of the parameters.

Every recipe clips the global gradient norm to 1 first.
"""

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

OPTIMISERS = ("adamw", "muon", "adamw+adagrad")


class RowwiseAdagradState(NamedTuple):
    accumulator: Any  # per table [rows] float32


def scale_by_rowwise_adagrad(initial_accumulator: float = 0.1, eps: float = 1e-10) -> optax.GradientTransformation:
    """g / sqrt(acc) with acc[row] += mean over the row of g^2 (rows = the leading axis of a 2D leaf)."""

    def init(params: Any) -> RowwiseAdagradState:
        return RowwiseAdagradState(
            jax.tree.map(lambda p: jnp.full(p.shape[:1], initial_accumulator, jnp.float32), params)
        )

    def update(updates: Any, state: RowwiseAdagradState, params: Any = None) -> tuple[Any, RowwiseAdagradState]:
        del params
        accumulator = jax.tree.map(
            lambda g, acc: acc + jnp.mean(jnp.square(g).reshape(g.shape[0], -1), axis=1), updates, state.accumulator
        )
        scaled = jax.tree.map(lambda g, acc: g * _inverse_root(acc, eps).reshape(-1, *([1] * (g.ndim - 1))),
                              updates, accumulator)
        return scaled, RowwiseAdagradState(accumulator)

    return optax.GradientTransformation(init, update)


def _inverse_root(accumulator: jax.Array, eps: float) -> jax.Array:
    """1 / sqrt(acc + eps), and 0 for a row that has never had gradient (acc 0, its update is 0 anyway)."""
    return jnp.where(accumulator > 0, jax.lax.rsqrt(accumulator + eps), 0.0)


def rowwise_adagrad(learning_rate: float) -> optax.GradientTransformation:
    return optax.chain(scale_by_rowwise_adagrad(), optax.scale(-learning_rate))


def param_groups(params: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Labels for optax.multi_transform: "table" for the embedding tables, "dense" for everything else."""
    return {
        module: {name: "table" if name.endswith("_table") else "dense" for name in leaves}
        for module, leaves in params.items()
    }


def warmup_cosine(peak: float, steps: int | None, warmup_fraction: float) -> optax.Schedule:
    """Linear warmup to `peak`, then cosine decay to 5% of it at `steps`; constant `peak` when steps is None
    (online training has no end)."""
    if steps is None:
        return optax.constant_schedule(peak)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=peak,
        warmup_steps=max(1, int(steps * warmup_fraction)),
        decay_steps=max(steps, 2),
        end_value=peak * 0.05,
    )


def make_optimiser(
    name: str,
    steps: int | None,
    *,
    learning_rate: float,
    weight_decay: float,
    warmup_fraction: float,
    muon_learning_rate: float,
    table_learning_rate: float,
) -> optax.GradientTransformation:
    """The named recipe (module docstring). AdamW peaks at `learning_rate`, Muon at `muon_learning_rate`
    (both warm up and decay over `steps`); row-wise AdaGrad runs at the constant `table_learning_rate`."""
    adamw = optax.adamw(warmup_cosine(learning_rate, steps, warmup_fraction), weight_decay=weight_decay)
    if name == "adamw":
        return optax.chain(optax.clip_by_global_norm(1.0), adamw)
    if name == "adamw+adagrad":
        dense = adamw
    elif name == "muon":
        dense = optax.contrib.muon(
            warmup_cosine(muon_learning_rate, steps, warmup_fraction),
            weight_decay=weight_decay,
            adam_learning_rate=warmup_cosine(learning_rate, steps, warmup_fraction),
        )
    else:
        raise ValueError(f"unknown optimiser {name!r}; choose one of {', '.join(OPTIMISERS)}")
    groups = optax.multi_transform({"dense": dense, "table": rowwise_adagrad(table_learning_rate)}, param_groups)
    return optax.chain(optax.clip_by_global_norm(1.0), groups)
