"""Micro-batching of ranking calls: the batcher itself, and batched forwards equal to unbatched ones."""

import dataclasses
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from phoenix import ranker as ranker_module
from phoenix.batcher import MicroBatcher
from phoenix.ranker import Ranker
from stores.records import ActionEntry
from tests.phoenix.test_model import TINY as MODEL_TINY

TINY = dataclasses.replace(MODEL_TINY, num_q_heads=2, num_kv_heads=1, age_buckets=8)
BUCKETS = (8, 32)
WAIT_S = 60.0  # generous: the machine may be loaded


def hold_first_batch(batcher: MicroBatcher, until_waiting: int) -> None:
    """Make the first batch wait until `until_waiting` more calls are queued, so they must share the next one
    (without this a fast forward could finish before the other threads arrive, and nothing would be shared)."""
    run = batcher._run
    first = threading.Event()

    def gated(jobs: Sequence) -> Sequence:
        if not first.is_set():
            first.set()
            deadline = time.monotonic() + WAIT_S
            while batcher.waiting() < until_waiting:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {batcher.waiting()} calls queued behind the first batch")
                time.sleep(0.001)
        return run(jobs)

    batcher._run = gated


def test_calls_during_a_batch_share_the_next_and_get_their_own_results() -> None:
    seen: list[list[int]] = []

    def run(jobs: Sequence[int]) -> list[int]:
        seen.append(list(jobs))
        return [job * 10 for job in jobs]

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_jobs=3)
    assert batcher.submit(1) == 10 and seen == [[1]]  # alone: runs at once, by itself
    hold_first_batch(batcher, until_waiting=5)
    results: dict[int, int] = {}
    first = threading.Thread(target=lambda: results.__setitem__(0, batcher.submit(0)))
    first.start()
    while not batcher._busy:
        time.sleep(0.001)  # wait until the first batch runs: the others then queue behind it
    threads = [threading.Thread(target=lambda j=j: results.__setitem__(j, batcher.submit(j))) for j in range(1, 6)]
    for thread in threads:
        thread.start()
    for thread in [first, *threads]:
        thread.join(WAIT_S)
    assert results == {j: j * 10 for j in range(6)}
    assert seen[1] == [0]
    assert sorted(len(batch) for batch in seen[2:]) == [2, 3]  # five queued calls, at most three a batch
    assert sorted(j for batch in seen[2:] for j in batch) == [1, 2, 3, 4, 5]
    assert batcher.stats.jobs == 7 and batcher.stats.batches == 4 and batcher.stats.largest == 3


def test_a_failing_batch_fails_each_of_its_calls_and_the_next_ones_still_run() -> None:
    calls = 0

    def run(jobs: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("forward failed")
        return list(jobs)

    batcher: MicroBatcher[int, int] = MicroBatcher(run)
    with pytest.raises(RuntimeError, match="forward failed"):
        batcher.submit(1)
    assert batcher.submit(2) == 2


def _history(seed: int, n: int) -> list[ActionEntry]:
    rng = np.random.default_rng(seed)
    return [
        ActionEntry(int(rng.integers(1, 10**9)), int(rng.integers(1, 500)), int(rng.integers(1, 1 << 19)), "search", i)
        for i in range(n)
    ]


def _candidates(seed: int, n: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(1, 10**9)), int(rng.integers(1, 500))) for _ in range(n)]


def test_batched_scores_equal_unbatched_for_different_users_histories_and_candidate_counts() -> None:
    ranker = Ranker.untrained(TINY, seed=7, candidate_buckets=BUCKETS, history_buckets=(4, 8))
    ranker.warmup()
    fns = ranker._state.fns
    programs = (fns.score, fns.score_batch, fns.prefix, fns.prefix_user)
    compiled = [program._cache_size() for program in programs]
    # Users with empty, short and full histories (three history buckets); 3 to 75 candidates (one to three
    # chunks, of both bucket sizes), one request with its own surface and creation times.
    requests = [
        dict(user_id=1, history=_history(1, 0), candidates=_candidates(11, 3)),
        dict(user_id=2, history=_history(2, 5), candidates=_candidates(12, 40)),
        dict(user_id=3, history=_history(3, 21), candidates=_candidates(13, 75)),
        dict(user_id=4, history=_history(4, 7), candidates=_candidates(14, 32), surface=2,
             created_at_ms=[1_000 * i for i in range(32)], now_ms=10_000_000),
        dict(user_id=5, history=_history(5, 30), candidates=_candidates(15, 9)),
    ]
    alone = [ranker.score(**r) for r in requests]
    assert ranker.batcher.stats.largest == 1
    hold_first_batch(ranker.batcher, until_waiting=len(requests) - 1)
    together: dict[int, np.ndarray] = {}
    threads = [
        threading.Thread(target=lambda i=i, r=r: together.__setitem__(i, ranker.score(**r)))
        for i, r in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert ranker.batcher.stats.largest == len(requests) - 1  # all but the first shared one batch
    for i, expected in enumerate(alone):
        assert together[i].shape == expected.shape
        np.testing.assert_allclose(together[i], expected, atol=2e-6, rtol=1e-5)
    # Every shape was compiled by the warm-up: no request compiles.
    for r in requests:  # retrieval's pass too (its corpus is empty: only the user is encoded)
        ranker.retrieve(r["user_id"], r["history"], 10)
    assert [program._cache_size() for program in programs] == compiled


def test_forwards_hold_at_most_rows_per_forward_rows() -> None:
    assert ranker_module._split_batches(7, 512) == [4, 2, 1]
    assert ranker_module._split_batches(3, 1024) == [2, 1]
    assert ranker_module._split_batches(1, 4096) == [1]


def test_retrieval_and_ranking_of_one_request_encode_the_user_once() -> None:
    ranker = Ranker.untrained(TINY, seed=8, candidate_buckets=BUCKETS, history_buckets=(4, 8))
    corpus = _candidates(20, 50)
    ranker.index.add_many([p for p, _ in corpus], [a for _, a in corpus])
    history = _history(6, 12)
    state = ranker._state
    ranker.retrieve(9, history, 10)
    assert state.prefixes.hits == 0
    ranker.score(9, history, _candidates(21, 5))
    assert state.prefixes.hits == 1  # ranking found retrieval's prefix
    ranker.score(9, [*history, ActionEntry(5, 6, 1, "search", 99)], _candidates(21, 5))
    assert state.prefixes.hits == 1  # a changed history is encoded again
    # Ranking from the shared prefix equals ranking from a prefix of its own.
    fresh = Ranker.untrained(TINY, seed=8, candidate_buckets=BUCKETS, history_buckets=(4, 8))
    np.testing.assert_allclose(
        ranker.score(9, history, _candidates(22, 20)), fresh.score(9, history, _candidates(22, 20)), atol=2e-6
    )
