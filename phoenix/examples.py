"""From an engagement log to model examples: request groups, leak-free histories, sampled negatives, split.

Time rules (why the code looks the way it does):
- A request group is the set of lines shown together (same user and request_id; a line without a request_id
  is a group of one). Its time is the earliest ts_ms among its lines.
- A user's history at time t holds only lines with ts_ms strictly earlier than t, so lines at the same
  millisecond (a request's own lines, or two requests at one instant) never see each other's labels.
- A candidate's age is its line's ts_ms minus its post's creation time (`post_created_at_ms`; unknown when
  absent): the age the post had when the user was shown it, which is what serving sees at request time.
"""

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from phoenix.affinity import affinity_values
from phoenix.batch import RankingBatch, make_batch, served_inputs, served_posts
from phoenix.config import PhoenixConfig
from phoenix.log import Impression
from phoenix.posts import ContentTable
from stores.records import ActionEntry
from stores.served_history import DEFAULT_MAX_IDS, DEFAULT_TTL_MS
from topics.actions import ACTION_INDEX, NUM_PHOENIX_ACTIONS, surface_id


@dataclass(frozen=True, slots=True)
class RequestGroup:
    user_id: int
    ts_ms: int
    impressions: tuple[Impression, ...]


def group_requests(impressions: Iterable[Impression]) -> list[RequestGroup]:
    """Request groups ordered by time (ties keep log order of each group's first line)."""
    by_key: dict[tuple[int, str] | int, list[Impression]] = {}
    for index, imp in enumerate(impressions):
        key: tuple[int, str] | int = (imp.user_id, imp.request_id) if imp.request_id is not None else index
        by_key.setdefault(key, []).append(imp)
    groups = [
        RequestGroup(user_id=lines[0].user_id, ts_ms=min(imp.ts_ms for imp in lines), impressions=tuple(lines))
        for lines in by_key.values()
    ]
    groups.sort(key=lambda group: group.ts_ms)  # stable: dict order is first-line order
    return groups


class HistoryIndex:
    """Every user's engaged lines, queried as "the history just before time t".

    Lines with at least one action (negative ones included: a block is part of what the model should see)
    become ActionEntry items; several lines on the same post merge into one entry whose mask is the OR of
    their actions and whose ts_ms/surface are those of the latest line. Entries are ordered oldest to newest
    by that latest time.

    With `served` (the log's lines are impressions a user was really shown), every line also counts as a
    post served to its user, as a worker's served history records it (`served_ids`); a log whose
    non-engaged lines were sampled (`sample_negatives`) was not shown, so it is built without.
    """

    def __init__(self, impressions: Iterable[Impression], served: bool = True) -> None:
        events: dict[int, list[tuple[int, int, int, int, str]]] = defaultdict(list)
        shown: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for imp in impressions:
            if imp.engaged:
                events[imp.user_id].append((imp.ts_ms, imp.post_id, imp.author_id, imp.action_mask, imp.surface))
            if served:
                shown[imp.user_id].append((imp.ts_ms, imp.post_id))
        self._events = {user: sorted(rows, key=lambda row: row[0]) for user, rows in events.items()}
        self._times = {user: [row[0] for row in rows] for user, rows in self._events.items()}
        self._shown = {user: sorted(rows) for user, rows in shown.items()}
        self._shown_times = {user: [row[0] for row in rows] for user, rows in self._shown.items()}

    def served_ids(
        self, user_id: int, before_ts_ms: int, max_ids: int = DEFAULT_MAX_IDS, ttl_ms: int = DEFAULT_TTL_MS
    ) -> list[int]:
        """Posts shown to the user in the `ttl_ms` before `before_ts_ms` (strictly before), the newest
        `max_ids` distinct ones, newest first: what a worker's served history (`stores.served_history`)
        holds at that time."""
        rows = self._shown.get(user_id)
        if not rows:
            return []
        times = self._shown_times[user_id]
        start = bisect.bisect_left(times, before_ts_ms - ttl_ms)
        end = bisect.bisect_left(times, before_ts_ms)
        newest_first = dict.fromkeys(post_id for _, post_id in reversed(rows[start:end]))
        return list(newest_first)[:max_ids]

    def history(self, user_id: int, before_ts_ms: int, max_len: int | None = None) -> list[ActionEntry]:
        """Merged history from the user's lines strictly before `before_ts_ms`; the newest `max_len` kept."""
        rows = self._events.get(user_id)
        if not rows:
            return []
        end = bisect.bisect_left(self._times[user_id], before_ts_ms)
        latest: dict[int, list] = {}  # post_id -> [ts, author, mask, surface]; insertion = newest first
        for ts, post_id, author_id, mask, surface in reversed(rows[:end]):
            entry = latest.get(post_id)
            if entry is not None:
                entry[2] |= mask  # an older action on a post already kept: merge its label
            elif max_len is None or len(latest) < max_len:
                latest[post_id] = [ts, author_id, mask, surface]
        return [
            ActionEntry(post_id=post_id, author_id=author_id, action_mask=mask, surface=surface, ts_ms=ts)
            for post_id, (ts, author_id, mask, surface) in reversed(latest.items())
        ]


def sample_negatives(
    impressions: Sequence[Impression], per_positive: int, window_ms: int, seed: int
) -> list[Impression]:
    """Add sampled non-engaged impressions to a log that has none; returns the whole log, ordered by time.

    Every group (lines sharing a request_id, or else lines of one user at one ts_ms) gets `per_positive`
    negatives per engaged line, all with the group's time, surface and request_id (one is made up for groups
    without one: "u{user}-t{ts}"). A negative is a post the user could have been shown: one engaged line
    drawn uniformly from all users' lines in the window [t - window_ms, t) before the group, so posts are
    popularity-weighted (drawn in proportion to their recent engagements) and never from the future. Posts
    by the user, by the authors the group engaged with, and repeats are excluded; where the window holds too
    few candidates a group gets fewer negatives. A negative carries its post's creation time (from any line
    of that post that has one), so its age is its own post's age at the group's time. Deterministic for a
    given seed.
    """
    if per_positive <= 0:
        raise ValueError("per_positive must be positive")
    engaged = sorted((imp for imp in impressions if imp.engaged), key=lambda imp: imp.ts_ms)
    pool_ts = np.fromiter((imp.ts_ms for imp in engaged), dtype=np.int64, count=len(engaged))
    created = {imp.post_id: imp.post_created_at_ms for imp in impressions if imp.post_created_at_ms is not None}
    rng = np.random.default_rng(seed)
    by_key: dict[tuple[int, str] | tuple[int, int], list[Impression]] = {}
    for imp in engaged:
        key = (imp.user_id, imp.request_id) if imp.request_id is not None else (imp.user_id, imp.ts_ms)
        by_key.setdefault(key, []).append(imp)
    out: list[Impression] = []
    for lines in by_key.values():
        first = lines[0]
        ts = min(imp.ts_ms for imp in lines)
        request_id = first.request_id or f"u{first.user_id}-t{ts}"
        lo = int(np.searchsorted(pool_ts, ts - window_ms, side="left"))
        hi = int(np.searchsorted(pool_ts, ts, side="left"))
        excluded_authors = {first.user_id} | {imp.author_id for imp in lines}
        chosen: set[int] = {imp.post_id for imp in lines}
        wanted = per_positive * len(lines)
        group = [replace(imp, request_id=request_id) for imp in lines]
        if hi > lo:
            # Rejection sampling over the window; the attempt cap bounds work when the window is mostly
            # excluded posts.
            for index in rng.integers(lo, hi, size=8 * wanted + 8):
                if len(group) - len(lines) >= wanted:
                    break
                candidate = engaged[int(index)]
                if candidate.author_id in excluded_authors or candidate.post_id in chosen:
                    continue
                chosen.add(candidate.post_id)
                group.append(
                    Impression(
                        first.user_id,
                        candidate.post_id,
                        candidate.author_id,
                        ts,
                        first.surface,
                        (),
                        request_id,
                        created.get(candidate.post_id),
                    )
                )
        # Shuffle so that the order of a request's lines carries no label information.
        order = rng.permutation(len(group))
        out.extend(group[i] for i in order)
    out.sort(key=lambda imp: imp.ts_ms)
    return out


def split_time(groups: Sequence[RequestGroup], holdout_fraction: float) -> int:
    """The ts at which the chronologically last `holdout_fraction` of groups begins (groups at ts >= it)."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError("holdout_fraction must be in (0, 1)")
    times = sorted(group.ts_ms for group in groups)
    if not times:
        raise ValueError("empty log")
    split = times[min(len(times) - 1, int(len(times) * (1.0 - holdout_fraction)))]
    if split <= times[0]:
        raise ValueError("log spans too little time for a chronological split")
    return split


def split_groups(groups: Sequence[RequestGroup], split_ts_ms: int) -> tuple[list[RequestGroup], list[RequestGroup]]:
    """(train, held-out): groups strictly before the split time, and the rest."""
    train = [group for group in groups if group.ts_ms < split_ts_ms]
    held_out = [group for group in groups if group.ts_ms >= split_ts_ms]
    return train, held_out


@dataclass(frozen=True, slots=True)
class RankingExample:
    """At most `num_candidates` lines of one request group, with their 19-action labels."""

    group: int  # index of the request group (in the sequence given to examples_from_groups)
    user_id: int
    ts_ms: int
    candidates: tuple[tuple[int, int], ...]  # (post_id, author_id)
    surfaces: tuple[int, ...]
    labels: np.ndarray  # [len(candidates), NUM_PHOENIX_ACTIONS] float32
    ages_ms: tuple[float, ...]  # each candidate's post age at its impression; NaN = unknown


def examples_from_groups(groups: Iterable[RequestGroup], num_candidates: int) -> list[RankingExample]:
    """Groups cut into chunks of at most `num_candidates` lines (the batch shape is fixed)."""
    examples = []
    for group_index, group in enumerate(groups):
        lines = group.impressions
        for start in range(0, len(lines), num_candidates):
            chunk = lines[start : start + num_candidates]
            labels = np.zeros((len(chunk), NUM_PHOENIX_ACTIONS), dtype=np.float32)
            for row, imp in enumerate(chunk):
                for name in imp.actions:
                    if ACTION_INDEX[name] < NUM_PHOENIX_ACTIONS:  # the optional heads are not trained
                        labels[row, ACTION_INDEX[name]] = 1.0
            examples.append(
                RankingExample(
                    group=group_index,
                    user_id=group.user_id,
                    ts_ms=group.ts_ms,
                    candidates=tuple((imp.post_id, imp.author_id) for imp in chunk),
                    surfaces=tuple(surface_id(imp.surface) for imp in chunk),
                    labels=labels,
                    ages_ms=tuple(imp.post_age_ms for imp in chunk),
                )
            )
    return examples


def synthetic_log(
    num_users: int = 48,
    num_authors: int = 24,
    num_communities: int = 4,
    posts_per_author: int = 3,
    requests_per_user: int = 30,
    candidates_per_request: int = 8,
    seed: int = 0,
) -> list[Impression]:
    """A small log with a planted signal, for tests and smoke runs.

    User u and author a belong to communities u % num_communities and a % num_communities. Every author is
    shown equally often, so overall popularity says little; a user favourites a candidate with probability
    0.6 when its author is in the user's community and 0.03 otherwise (replies follow some favourites).
    Each request shows `candidates_per_request` distinct authors, each with one of its posts
    (post_id = author * 1000 + k, k < posts_per_author); one request every ~10 minutes.
    """
    rng = np.random.default_rng(seed)
    impressions: list[Impression] = []
    users = rng.permutation(np.repeat(np.arange(1, num_users + 1), requests_per_user))
    for n, user in enumerate(users.tolist()):
        ts = n * 600_000 + int(rng.integers(0, 600_000))
        authors = rng.choice(np.arange(1, num_authors + 1), size=candidates_per_request, replace=False)
        for author in authors.tolist():
            liked = rng.random() < (0.6 if author % num_communities == user % num_communities else 0.03)
            actions: tuple[str, ...] = ()
            if liked:
                actions = ("favorite", "reply") if rng.random() < 0.3 else ("favorite",)
            post_id = author * 1000 + int(rng.integers(0, posts_per_author))
            impressions.append(Impression(user, post_id, author, ts, "home_for_you", actions, f"r{n}"))
    return impressions


@dataclass(frozen=True, slots=True)
class NegativeSampling:
    """How negatives were sampled for a log without non-engaged lines (recorded in checkpoint meta)."""

    per_positive: int
    window_ms: int
    seed: int
    weighting: str = "popularity"

    def to_dict(self) -> dict[str, object]:
        return {
            "per_positive": self.per_positive,
            "window_ms": self.window_ms,
            "seed": self.seed,
            "weighting": self.weighting,
        }


def ensure_negatives(
    impressions: Sequence[Impression], sampling: NegativeSampling
) -> tuple[list[Impression], NegativeSampling | None]:
    """The log as is when it has any non-engaged line, else with sampled negatives; says which."""
    if any(not imp.engaged for imp in impressions):
        return list(impressions), None
    return sample_negatives(impressions, sampling.per_positive, sampling.window_ms, sampling.seed), sampling


def examples_to_batch(
    cfg: PhoenixConfig,
    examples: Sequence[RankingExample],
    history: HistoryIndex,
    num_candidates: int,
    history_slots: int | None = None,
    content: ContentTable | None = None,
) -> tuple[RankingBatch, np.ndarray]:
    """Model inputs and labels [B, num_candidates, 19] (zero on padding) for a list of examples.

    `history_slots` (<= S) narrows the history arrays to that many slots holding the newest entries; the
    model counts positions back from S, so a narrower array is the same input with less padding. `content`
    gives the posts' content vectors and semantic ids (used by a config with content); a config with
    `served_affinity` also reads the posts served to each user before the request (`HistoryIndex.served_ids`).
    """
    slots = cfg.history_len if history_slots is None else min(history_slots, cfg.history_len)
    batch = make_batch(
        cfg,
        [ex.user_id for ex in examples],
        [history.history(ex.user_id, ex.ts_ms, slots) for ex in examples],
        [ex.candidates for ex in examples],
        num_candidates=num_candidates,
        candidate_ages_ms=[ex.ages_ms for ex in examples],
        content=content,
        served=served_lists(cfg, examples, history),
    )
    surfaces = np.zeros((len(examples), num_candidates), dtype=np.int32)
    labels = np.zeros((len(examples), num_candidates, NUM_PHOENIX_ACTIONS), dtype=np.float32)
    for row, ex in enumerate(examples):
        surfaces[row, : len(ex.surfaces)] = ex.surfaces
        labels[row, : len(ex.candidates)] = ex.labels
    batch = replace(batch, history=batch.history.first_slots(slots), candidate_surfaces=surfaces)
    return batch, labels


def served_lists(
    cfg: PhoenixConfig, examples: Sequence[RankingExample], history: HistoryIndex
) -> list[list[tuple[int, int]]] | None:
    """Per example, the posts served to the user before it with their actions (`served_posts`), for a config
    with `served_affinity`; None otherwise."""
    if not cfg.served_affinity:
        return None
    # The actions come from the full history, as from a worker's action sequence.
    return [
        served_posts(history.history(ex.user_id, ex.ts_ms, cfg.history_len), history.served_ids(ex.user_id, ex.ts_ms))
        for ex in examples
    ]


def affinity_sample(
    cfg: PhoenixConfig,
    examples: Sequence[RankingExample],
    history: HistoryIndex,
    num_candidates: int,
    content: ContentTable | None,
    sample: int = 2000,
) -> tuple[np.ndarray, np.ndarray]:
    """Unbucketed affinity values [M, N] and which are known [M, N] of the candidates of up to `sample`
    evenly spaced examples (what `phoenix.affinity.fit_edges` fits the bins on)."""
    picks = np.linspace(0, len(examples) - 1, num=min(sample, len(examples))).astype(int)
    values, known = [], []
    for start in range(0, len(picks), 256):
        chunk = [examples[i] for i in picks[start : start + 256]]
        batch, _ = examples_to_batch(cfg, chunk, history, num_candidates, content=content)
        served = served_lists(cfg, chunk, history)
        assert batch.history.content is not None and batch.candidate_content is not None  # a config with content
        chunk_values, chunk_known = affinity_values(
            cfg,
            batch.history.content,
            batch.history.actions,
            batch.history.mask,
            batch.candidate_content,
            *(served_inputs(cfg, content, served) if served is not None else ()),
        )
        values.append(chunk_values[batch.candidate_mask])
        known.append(chunk_known[batch.candidate_mask])
    return np.concatenate(values), np.concatenate(known)


def history_length_quantile(
    examples: Sequence[RankingExample], history: HistoryIndex, max_len: int, quantile: float, sample: int = 2000
) -> int:
    """The `quantile` of history lengths (capped at max_len) over up to `sample` evenly spaced examples."""
    if not examples:
        return 0
    picks = np.linspace(0, len(examples) - 1, num=min(sample, len(examples))).astype(int)
    lengths = [len(history.history(examples[i].user_id, examples[i].ts_ms, max_len)) for i in picks]
    return int(np.ceil(np.quantile(lengths, quantile)))
