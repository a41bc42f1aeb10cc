import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from phoenix.optim import OPTIMISERS, make_optimiser, param_groups, scale_by_rowwise_adagrad


def test_rowwise_adagrad_keeps_one_accumulator_per_row_and_leaves_untouched_rows_alone() -> None:
    transform = scale_by_rowwise_adagrad(initial_accumulator=0.0, eps=0.0)
    table = jnp.zeros((3, 4))
    state = transform.init(table)
    assert state.accumulator.shape == (3,)
    grad = jnp.asarray([[2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 1.0, -1.0]])
    update, state = transform.update(grad, state)
    # Row 0: accumulator mean(g^2) = 4, update g / 2 = 1; row 2: accumulator 1, update = g; row 1: nothing.
    np.testing.assert_allclose(np.asarray(state.accumulator), [4.0, 0.0, 1.0])
    np.testing.assert_allclose(np.asarray(update[0]), [1.0] * 4)
    np.testing.assert_allclose(np.asarray(update[2]), [1.0, -1.0, 1.0, -1.0])
    assert not np.isnan(np.asarray(update[1])).any()  # 0 / sqrt(0) guarded: the row stays where it is
    # A second identical gradient moves row 0 less: its accumulator grew.
    second, _ = transform.update(grad, state)
    assert float(second[0, 0]) < 1.0


def test_param_groups_send_tables_to_adagrad_and_the_rest_to_the_dense_optimiser() -> None:
    params = {"phoenix": {"post_table": 0, "age_table": 0}, "phoenix/~/layer_0/attention/query": {"w": 0}}
    assert param_groups(params) == {
        "phoenix": {"post_table": "table", "age_table": "table"},
        "phoenix/~/layer_0/attention/query": {"w": "dense"},
    }


@pytest.mark.parametrize("name", OPTIMISERS)
def test_every_recipe_descends_a_small_problem(name: str) -> None:
    target = jax.random.normal(jax.random.PRNGKey(0), (8, 4))
    params = {"m": {"user_table": jnp.zeros((8, 4)), "w": jnp.zeros((4, 4)), "scale": jnp.ones(4)}}

    def loss(p: dict) -> jax.Array:
        x = p["m"]["user_table"] @ (jnp.eye(4) + p["m"]["w"]) * p["m"]["scale"]
        return jnp.mean((x - target) ** 2)

    optimiser = make_optimiser(name, 200, learning_rate=0.05, weight_decay=0.0, warmup_fraction=0.05,
                               muon_learning_rate=0.05, table_learning_rate=0.3)
    @jax.jit
    def step(params: dict, state: optax.OptState) -> tuple[dict, optax.OptState]:
        updates, state = optimiser.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    state = optimiser.init(params)
    first = float(loss(params))
    for _ in range(200):
        params, state = step(params, state)
    assert float(loss(params)) < 0.2 * first


def test_unknown_recipe_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown optimiser"):
        make_optimiser("sgd", 10, learning_rate=1.0, weight_decay=0.0, warmup_fraction=0.0, muon_learning_rate=1.0,
                       table_learning_rate=1.0)
