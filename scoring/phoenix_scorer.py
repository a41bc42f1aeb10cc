"""PhoenixScorer: the action probabilities of every candidate from the Phoenix ranker: one per head the
model has, the first k of topics.actions.ACTIONS (the 19 of every checkpoint, and the optional heads appended
after them when the checkpoint has them). A head the model lacks is absent from the row: the weighted scorer
counts it as 0 and explain does not list it.

A repost is scored as its original post and the original's author (`Candidate.model_target`). The ranker
call is synchronous and CPU-heavy; it runs off the event loop (streams.offload) in one call for the whole
request, so the loop is free for other requests while the model computes.

When the ranker's checkpoint carries a per-head calibration (phoenix.calibration), the served probabilities
are the calibrated ones and the model's own are kept beside them for `explain`.

The ranker also gets each candidate's creation time and the request time (for the post-age input): the
served post's own creation time, so a repost counts from when it was reposted, i.e. when it entered the feed;
and the hydrated content vectors (`content_embedding`, the original's for a repost, as stored at ingest).
"""

import time
from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np

from stores.records import stack_vectors
from streams import metrics
from streams.candidate import Candidate, Updates
from streams.offload import run_blocking
from streams.ports import RankerPort
from streams.query import FeedQuery
from streams.stages import Scorer
from topics.actions import NUM_ACTIONS, NUM_PHOENIX_ACTIONS, surface_id


class PhoenixScorer(Scorer):
    name = "PhoenixScorer"
    fields = frozenset({"phoenix_scores", "raw_phoenix_scores"})

    def __init__(self, ranker: RankerPort, executor: Executor | None = None, surface: str = "home_for_you") -> None:
        self._ranker = ranker
        self._executor = executor
        self._surface = surface_id(surface)

    async def score(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        targets = [c.model_target() for c in candidates]
        created_at_ms = [c.created_at_ms for c in candidates]
        content = _content_matrix([c.content_embedding for c in candidates])
        metrics.PHOENIX_BATCH_SIZE.observe(len(targets))
        start = time.perf_counter()
        probabilities = await run_blocking(
            self._executor,
            self._ranker.score,
            query.user_id,
            query.action_sequence,
            targets,
            self._surface,
            created_at_ms,
            query.now_ms,
            content,
            query.served_ids,
        )
        metrics.PHOENIX_SCORE_SECONDS.observe(time.perf_counter() - start)
        matrix = np.asarray(probabilities, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != len(candidates) or not (
            NUM_PHOENIX_ACTIONS <= matrix.shape[1] <= NUM_ACTIONS
        ):
            raise ValueError(f"ranker returned shape {matrix.shape} for {len(candidates)} candidates")
        if not np.isfinite(matrix).all():
            raise ValueError("ranker returned non-finite probabilities")
        # A ranker with a calibration (optional in the port: fakes and old rankers have none) maps each head.
        calibrate = getattr(self._ranker, "calibrate", None)
        calibrated = calibrate(matrix) if calibrate is not None else None
        raw: list[np.ndarray | None] = [None] * len(candidates)
        if calibrated is not None:
            raw, matrix = list(matrix), np.asarray(calibrated, dtype=np.float64)
        matrix.flags.writeable = False  # its rows become the candidates' scores, as frozen as the candidates
        return {"phoenix_scores": list(matrix), "raw_phoenix_scores": raw}


def _content_matrix(vectors: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """[C, E] with zero rows for candidates without a vector; None when no candidate has one."""
    known = next((v for v in vectors if v is not None), None)
    if known is None:
        return None
    return stack_vectors(vectors, known.shape[0])
