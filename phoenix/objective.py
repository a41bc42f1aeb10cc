"""The ranker's training objective: masked sigmoid BCE over the action heads plus a within-request term.

- `masked_bce`: the published loss. Each of the 19 heads is an independent sigmoid; BCE is summed over the
  heads and averaged over real (non-padding) candidates. It learns P(action | user, history, candidate)
  across the whole batch, so much of what it learns is who engages at all and how often (a user's base
  rate, the hour), which is the same for every candidate of one request and cannot change their order.
- `within_request_pairwise`: what serving needs, the order of the candidates of one request. For every
  head and every pair (i, j) of candidates of the same request where i got the action and j did not, a
  logistic loss on the logit gap, softplus(-(z_i - z_j)) (RankNet), averaged over all such pairs in the
  batch. Every request-level effect cancels in the gap, so the gradient only carries what tells the
  candidates of one request apart. It agrees with BCE (both raise z_i and lower z_j) and needs no serving
  weights: a weighted sum of heads that each order the request well orders it well.
"""

import jax
import jax.numpy as jnp
import optax


def masked_bce(logits: jax.Array, labels: jax.Array, candidate_mask: jax.Array) -> jax.Array:
    """logits, labels [B, C, A]; candidate_mask [B, C] -> scalar (sum over heads, mean over candidates)."""
    weight = candidate_mask[..., None].astype(jnp.float32)
    bce = optax.sigmoid_binary_cross_entropy(logits, labels)
    return jnp.sum(bce * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def within_request_pairwise(logits: jax.Array, labels: jax.Array, candidate_mask: jax.Array) -> jax.Array:
    """Mean RankNet loss over (head, engaged i, not-engaged j) triples of the same request; 0 if none."""
    real = candidate_mask.astype(bool)[..., None]  # [B, C, 1]
    engaged = (labels > 0.5) & real  # [B, C, A]
    skipped = (labels <= 0.5) & real
    pairs = engaged[:, :, None, :] & skipped[:, None, :, :]  # [B, Ci, Cj, A]
    gap = logits[:, :, None, :] - logits[:, None, :, :]  # z_i - z_j
    losses = jax.nn.softplus(-gap) * pairs
    return jnp.sum(losses) / jnp.maximum(jnp.sum(pairs), 1.0)
