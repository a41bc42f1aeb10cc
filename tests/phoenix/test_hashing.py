import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from phoenix.config import DEMO, PhoenixConfig
from phoenix.hashing import hash_ids

ROOT = Path(__file__).resolve().parents[2]
IDS = [1, 2, 3, 42, 10**12, 2**62 + 7, 0, -5]


def test_shape_range_and_padding() -> None:
    out = hash_ids(np.array(IDS), "post", DEMO)
    assert out.shape == (len(IDS), DEMO.num_hashes)
    assert out.dtype == np.int32
    real, absent = out[:-2], out[-2:]
    assert np.all((real >= 1) & (real < DEMO.post_vocab))
    assert np.all(absent == 0)


def test_kinds_hash_functions_and_seed_differ() -> None:
    ids = np.arange(1, 2001)
    post = hash_ids(ids, "post", DEMO)
    assert (post[:, 0] != post[:, 1]).mean() > 0.99  # the two hash functions are independent
    author = hash_ids(ids, "author", PhoenixConfig(**{**DEMO.to_dict(), "author_vocab": DEMO.post_vocab}))
    assert (post != author).any(axis=1).mean() > 0.99
    reseeded = hash_ids(ids, "post", PhoenixConfig(**{**DEMO.to_dict(), "hash_seed": 1}))
    assert (post != reseeded).any(axis=1).mean() > 0.99


def test_buckets_spread_evenly() -> None:
    buckets = hash_ids(np.arange(1, 200_001), "user", DEMO)[:, 0]
    counts = np.bincount(buckets, minlength=DEMO.user_vocab)[1:]
    expected = 200_000 / (DEMO.user_vocab - 1)
    assert counts.max() < 3 * expected and counts.min() > 0


def test_stable_across_processes() -> None:
    code = (
        "import numpy as np, json; from phoenix.config import DEMO; from phoenix.hashing import hash_ids; "
        f"print(json.dumps(hash_ids(np.array({IDS}), 'author', DEMO).tolist()))"
    )
    # A different PYTHONHASHSEED would change Python's hash(); our buckets must not depend on it.
    env = {"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert np.array_equal(np.array(json.loads(result.stdout)), hash_ids(np.array(IDS), "author", DEMO))
