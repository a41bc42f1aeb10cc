"""A candidate post's age at scoring time, as the bucket id the model's `age_table` is indexed by.

Why: the world (and any real feed) rewards fresh posts, and nothing else the model sees tells it how old a
candidate is. The age is time-dependent, so it cannot live in the hashed post embedding (one row per post
for all time); it is a separate small input.

Buckets (for `num_buckets` = B >= 2): 0 = unknown (no creation time); otherwise
1 + min(B - 2, floor(log2(1 + age_minutes))), with negative ages (clock skew) clamped to 0. Log-spaced:
B = 16 gives bucket 1 for under a minute, 8 for 2-4 hours, 10 for 8.5-17 hours and the last one, 15, for
11.4 days and older, so the resolution is finest where freshness changes fastest.

Ages are float64 milliseconds with NaN meaning unknown, so one array carries both (float64 holds every
millisecond exactly for 285,000 years).
"""

from collections.abc import Sequence

import numpy as np

UNKNOWN_AGE_BUCKET = 0
_MINUTE_MS = 60_000.0


def age_buckets(age_ms: np.ndarray | Sequence[float], num_buckets: int) -> np.ndarray:
    """int32 bucket ids, same shape as `age_ms` (NaN = unknown -> 0); see the module docstring."""
    if num_buckets < 2:
        raise ValueError("age buckets need the unknown bucket plus at least one age bucket")
    ages = np.asarray(age_ms, dtype=np.float64)
    known = ~np.isnan(ages)
    minutes = np.maximum(np.where(known, ages, 0.0), 0.0) / _MINUTE_MS
    # floor(log2(1 + m)) computed from the float exponent: exact at powers of two, unlike floor(np.log2(...)).
    _, exponent = np.frexp(1.0 + minutes)
    buckets = 1 + np.minimum(num_buckets - 2, exponent - 1)
    return np.where(known, buckets, UNKNOWN_AGE_BUCKET).astype(np.int32)


def ages_ms(now_ms: int | np.ndarray | Sequence[int], created_at_ms: Sequence[int | None]) -> np.ndarray:
    """float64 ages now - created (NaN where the creation time is None); `now_ms` is one time or one per post."""
    created = np.array([np.nan if c is None else float(c) for c in created_at_ms], dtype=np.float64)
    return np.asarray(now_ms, dtype=np.float64) - created
