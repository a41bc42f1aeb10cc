"""`foryou bench capacity`: what one worker holds, per post and per user, measured on the real stores.

Four parts, each built with the code a worker runs and measured where it lives:

- **Post replica** (every worker holds every live post): `--posts` creates over the post retention (2 days)
  go through `PostStore.apply` on RocksDB with the real content encoder (`phoenix.content`, a float16 vector
  stored beside each post), the Thunder limits of `--preset`, in post-log batches. Measured: the bytes of
  keys and values written per live post, by kind (post body, timelines, time index, content vector), and
  the bytes on disk after a flush and a full compaction (SST files, compressed as the store writes them),
  per live post. The replica's resident memory does not grow with the posts (RocksDB keeps them on disk
  behind a bounded block cache and memtables), so its RSS delta is recorded as a total, not per post.
- **Retrieval index** (every worker indexes every live post, `phoenix.index.PostIndex`): the live posts
  added as the worker's runtime adds them, then `maintain()` builds the approximate (IVF, 4-bit fast-scan)
  index as a worker's ranker does above 50,000 posts. Measured: the bytes it holds per post (the float32
  rows, ids and alive mask; the post-to-row dict; the serialized faiss index) and the process's RSS delta
  per post. The embedding function is a seeded numpy one of the model's retrieval width
  (`--retrieval-dim`): the bytes held do not depend on what the candidate tower computes.
- **User tables** (each worker holds its partitions' share): `--users` users with a typical state built by
  the real stores over dicts (engagement sequence of `--history` actions, `--follows` follows plus a few
  blocks, mutes and muted keywords, `--served` served ids, the 64 answered request ids), then each table's
  values written under Faust's JSON keys into its own RocksDB and compacted. Measured: key and value bytes
  per user (what the changelog topics hold) and bytes on disk per user.
- **Engagement counts** (every worker counts every impression and engagement, `agents.counts_replica`):
  `--count-records` wire records (35 impressions to 20 engagements) on the live posts, decoded, aggregated
  and applied in batches as the replica does, without a Kafka consumer. Measured: bytes on disk per counted
  post, and records per second (one thread: an upper bound of what a worker's replica reads).

Everything is seeded; sizes are deterministic, RSS deltas move a little with the allocator. Per-million
figures in the params are linear extrapolations of the per-post and per-user measurements.
Records: bench/results/capacity.json (`capacity.post_replica.*`, `capacity.retrieval_index.*`,
`capacity.engagement_counts.*`, `capacity.user_tables.*`); the README's capacity plan is built on them.
"""

import argparse
import contextlib
import ctypes
import gc
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import orjson
from rocksdict import Options, Rdict

from agents.counts_replica import decode_counted
from agents.feeds import REMEMBERED_REQUESTS
from foryou.benchmarks import RESULTS_DIR, record, write_results
from phoenix import content
from phoenix.content_bench import TOPIC_POSTS
from phoenix.index import EmbedFn, PostIndex
from stores.action_sequences import UserActionSequences
from stores.engagement_counts import EngagementCounts, count_deltas
from stores.post_store import DEFAULT_RETENTION_MS, PostStore
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from streams.config import load_config
from topics.actions import PHOENIX_ACTIONS
from topics.schemas import Engagement, Impression, TweetCreate, encode
from topics.specs import ENGAGEMENT_EVENTS, IMPRESSIONS

NOW_MS = 1_700_000_000_000
MILLION = 1_000_000
MB = 1 << 20
_COUNT_BATCH = 5_000  # records per counts batch (the replica's getmany bound)
# What each one-byte key prefix of the post store holds (stores/post_store.py, "RocksDB layout").
_POST_KEY_KINDS = {
    b"p": "post_body", b"t": "timelines", b"c": "time_index", b"e": "content_vector", b"f": "follower_counts",
    b"o": "offsets", b"m": "count", b"d": "tombstones", b"x": "tombstone_index", b"g": "follow_edges",
}
USER_TABLES = ("actions", "graph", "served", "answered")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000, help="post creates applied to the replica")
    parser.add_argument("--authors", type=int, default=5_000, help="authors, Zipf-like activity")
    parser.add_argument("--words", type=int, nargs=2, default=(4, 40), metavar=("MIN", "MAX"),
                        help="words per post text (reposts carry none of their own)")
    parser.add_argument("--batch", type=int, default=5_000, help="creates per post-log batch")
    parser.add_argument("--preset", default="production-2026-10", help="pipeline preset (Thunder's limits)")
    parser.add_argument("--retrieval-dim", type=int, default=64, help="R: the model's two-tower width (DEMO 64)")
    parser.add_argument("--count-records", type=int, default=200_000,
                        help="impressions and engagements counted (the counts replica)")
    parser.add_argument("--users", type=int, default=500, help="users with a typical state (per-user bytes)")
    parser.add_argument("--history", type=int, default=128, help="engaged posts per user (the sequence bound)")
    parser.add_argument("--follows", type=int, default=300)
    parser.add_argument("--served", type=int, default=700,
                        help="served ids per user (10 feeds of 35 a day over the 2-day memory)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where capacity.json goes")
    return parser.parse_args(argv)


# -- measuring ----------------------------------------------------------------------------------------------


def _settle() -> None:
    """Free what can be freed and hand it back to the OS, so RSS deltas are the live data's."""
    gc.collect()
    # Not glibc: RSS deltas then include the allocator's retained free memory.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_bytes() -> int:
    """The process's resident set size now (Linux /proc)."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError as error:
        raise SystemExit(f"foryou bench capacity reads RSS from /proc/self/statm (Linux): {error}") from error
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _settled_rss() -> int:
    _settle()
    return rss_bytes()


def raw_bytes_by_prefix(path: str) -> dict[bytes, int]:
    """Key plus value bytes per one-byte key prefix of the RocksDB at `path`."""
    sizes: defaultdict[bytes, int] = defaultdict(int)
    db = Rdict(path, Options(raw_mode=True))
    try:
        for key, value in db.items():
            sizes[key[:1]] += len(key) + len(value)
    finally:
        db.close()
    return dict(sizes)


def compacted_disk_bytes(path: str) -> int:
    """Bytes of the SST files of the RocksDB at `path` after a flush and a full compaction: what its data
    takes on disk in steady state (before, part of it sits in the write-ahead log and uncompacted levels)."""
    db = Rdict(path, Options(raw_mode=True))
    try:
        db.flush()
        db.compact_range(None, None)
    finally:
        db.close()
    return sum(f.stat().st_size for f in Path(path).glob("*.sst"))


# -- the post replica ---------------------------------------------------------------------------------------


def _post_batches(args: argparse.Namespace, rng: np.random.Generator) -> Iterator[list[dict[str, Any]]]:
    """`args.posts` creates in time order over the retention, in batches: 60% originals (a tenth with video,
    a tenth with a photo), 25% replies, 15% reposts; authors Zipf-like. Made one batch at a time, so the
    events never sit in memory while RSS is measured."""
    vocabulary = np.array(" ".join(p for posts in TOPIC_POSTS.values() for p in posts).split())
    weights = 1.0 / np.arange(1, args.authors + 1) ** 0.8
    weights /= weights.sum()
    created = np.sort(NOW_MS - DEFAULT_RETENTION_MS + 60_000 + rng.integers(0, DEFAULT_RETENTION_MS - 120_000,
                                                                              size=args.posts))
    recent: list[tuple[int, int, int]] = []  # (post_id, author_id, conversation_id) of the last originals
    for start in range(0, args.posts, args.batch):
        count = min(args.batch, args.posts - start)
        authors = rng.choice(args.authors, size=count, p=weights) + 1
        kinds = rng.random(count)
        media = rng.random(count)
        lengths = rng.integers(args.words[0], args.words[1] + 1, size=count)
        batch: list[dict[str, Any]] = []
        for i in range(count):
            post_id = start + i + 1
            text = " ".join(rng.choice(vocabulary, size=int(lengths[i])))
            event = TweetCreate(post_id=post_id, author_id=int(authors[i]), created_at_ms=int(created[start + i]),
                                text=text, conversation_id=post_id).to_dict()
            if recent and kinds[i] >= 0.6:
                target_id, target_author, conversation = recent[int(rng.integers(len(recent)))]
                if kinds[i] < 0.85:
                    event.update(in_reply_to_post_id=target_id, in_reply_to_user_id=target_author,
                                 conversation_id=conversation)
                else:
                    event.update(repost_of_post_id=target_id, repost_of_user_id=target_author, text="")
            else:
                if media[i] < 0.1:
                    event.update(media="video", video_duration_ms=30_000)
                elif media[i] < 0.2:
                    event["media"] = "photo"
                recent.append((post_id, event["author_id"], post_id))
                del recent[: max(0, len(recent) - 10_000)]
            batch.append(event)
        yield batch


def measure_post_replica(directory: Path, args: argparse.Namespace) -> tuple[dict[str, Any], dict[int, int]]:
    """The replica's bytes per live post (written and on disk) and its RSS delta; the live posts."""
    encoder = content.load_encoder()
    thunder = load_config(env={"FORYOU_PRESET": args.preset}).thunder
    path = str(directory / "post-store")
    rng = np.random.default_rng(args.seed)
    before = _settled_rss()
    store = PostStore(path, content_encoder=encoder.encode, timeline_cap=thunder.timeline_cap,
                      max_original_per_author=thunder.max_originals_per_author,
                      max_secondary_per_author=thunder.max_secondary_per_author)
    live: dict[int, int] = {}
    text_chars = 0
    started = time.perf_counter()
    try:
        for offset, batch in enumerate(_post_batches(args, rng)):
            text_chars += sum(len(event["text"]) for event in batch)
            applied = store.apply(batch, offsets={0: offset + 1}, now_ms=NOW_MS)
            live.update(applied.added)
            for post_id in applied.removed:
                live.pop(post_id, None)
        apply_s = time.perf_counter() - started
        stored = store.count()
        rss_delta = _settled_rss() - before
    finally:
        store.close()
    assert stored == len(live), (stored, len(live))
    raw = raw_bytes_by_prefix(path)
    disk = compacted_disk_bytes(path)
    per_post = disk / stored
    result = {
        "live_posts": stored,
        "bytes_per_post": per_post,
        "raw_bytes_per_post": sum(raw.values()) / stored,
        "rss_delta_bytes": rss_delta,
        "params": {
            "posts_applied": args.posts,
            "live_posts": stored,
            "authors": args.authors,
            "mean_text_chars": round(text_chars / args.posts, 1),
            "content": content.ENCODER_ID,
            "preset": args.preset,
            "timeline_cap": thunder.timeline_cap,
            "raw_bytes_per_post_by_kind": {
                _POST_KEY_KINDS.get(prefix, prefix.decode(errors="replace")): round(size / stored, 1)
                for prefix, size in sorted(raw.items())
            },
            "disk_mb_per_million_posts": round(per_post * MILLION / MB, 1),
            "apply_s": round(apply_s, 2),
        },
    }
    return result, live


# -- the retrieval index ------------------------------------------------------------------------------------


def _seeded_unit_rows(dim: int) -> EmbedFn:
    """Unit rows seeded by each batch's first post id: the bytes held do not depend on the tower."""

    def embed(post_ids: np.ndarray, author_ids: np.ndarray) -> np.ndarray:
        rows = np.random.default_rng(int(post_ids[0]) if len(post_ids) else 0).standard_normal((len(post_ids), dim))
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        return rows.astype(np.float32)

    return embed


def index_bytes(index: PostIndex) -> dict[str, int]:
    """What the index holds: its row arrays (allocated), the post-to-row dict with its int objects, and the
    faiss approximate index (its serialized size: codes, ids, centroids)."""
    corpus = index.corpus
    arrays = corpus.emb.nbytes + corpus.post_ids.nbytes + corpus.author_ids.nbytes + corpus.alive.nbytes
    row_of = sys.getsizeof(corpus.row_of) + sum(
        sys.getsizeof(post_id) + sys.getsizeof(row) for post_id, row in corpus.row_of.items()
    )
    ann = len(faiss.serialize_index(corpus.ann.index)) if corpus.ann is not None else 0
    return {"arrays": arrays, "row_of": row_of, "ann": ann}


def measure_retrieval_index(live: dict[int, int], args: argparse.Namespace) -> dict[str, Any]:
    before = _settled_rss()
    index = PostIndex(_seeded_unit_rows(args.retrieval_dim), args.retrieval_dim, "capacity")
    started = time.perf_counter()
    index.add_many(list(live), list(live.values()))
    index.flush()
    rebuilt = index.maintain()  # the IVF index a worker's ranker builds once 50,000 posts are live
    build_s = time.perf_counter() - started
    rss_delta = _settled_rss() - before
    held = index_bytes(index)
    posts = len(index)
    corpus = index.corpus
    row_capacity = len(corpus.emb)
    # A compacted corpus has exactly its live rows: the next add doubles the row arrays (Corpus.append).
    index.add(max(live) + 1, 1)
    index.flush()
    arrays_after_next_add = index_bytes(index)["arrays"]
    return {
        "bytes_per_post": sum(held.values()) / posts,
        "rss_bytes_per_post": rss_delta / posts,
        "params": {
            "posts": posts,
            "retrieval_dim": args.retrieval_dim,
            "ann": rebuilt and corpus.ann is not None,
            "nlist": corpus.ann.nlist if corpus.ann is not None else 0,
            "bytes_per_post_by_part": {name: round(size / posts, 1) for name, size in held.items()},
            "row_capacity": row_capacity,
            "arrays_bytes_per_post_after_next_add": round(arrays_after_next_add / posts, 1),
            "rss_delta_bytes": rss_delta,
            "mb_per_million_posts": round(sum(held.values()) / posts * MILLION / MB, 1),
            "build_s": round(build_s, 2),
        },
    }


# -- the engagement counts ---------------------------------------------------------------------------------


def _count_records(live: list[int], count: int, rng: np.random.Generator) -> list[tuple[str, bytes]]:
    """`count` wire records, 35 impressions to every 20 engagements (a feed of 35 to an engagement rate of
    about a half per feed is the world's order of magnitude), on live posts, popular ones more often."""
    actions = list(PHOENIX_ACTIONS)
    weights = 1.0 / np.arange(1, len(live) + 1) ** 0.8
    weights /= weights.sum()
    posts = np.asarray(live)[rng.choice(len(live), size=count, p=weights)].tolist()
    out: list[tuple[str, bytes]] = []
    for i, post_id in enumerate(posts):
        user_id = int(rng.integers(1, 10_000_000))
        if i % 55 < 35:
            value = encode(Impression(request_id=f"{i:032x}", user_id=user_id, post_id=post_id, author_id=1,
                                      rank=i % 35 + 1, score=0.5, served_at_ms=NOW_MS))
            out.append((IMPRESSIONS, value))
        else:
            value = encode(Engagement(user_id=user_id, post_id=post_id, author_id=1,
                                      action=actions[int(rng.integers(len(actions)))], surface="home_for_you",
                                      ts_ms=NOW_MS))
            out.append((ENGAGEMENT_EVENTS, value))
    return out


def measure_engagement_counts(directory: Path, live: dict[int, int], args: argparse.Namespace) -> dict[str, Any]:
    """Every worker counts every impression and engagement of every post (agents.counts_replica): bytes per
    counted post on disk, and the in-process rate of decode + delta + apply (no Kafka consumer: an upper
    bound of what one worker's replica can read)."""
    rng = np.random.default_rng(args.seed + 2)
    wire = _count_records(list(live), args.count_records, rng)
    path = str(directory / "engagement-counts")
    store = EngagementCounts(path)
    counted: set[int] = set()
    started = time.perf_counter()
    try:
        for start in range(0, len(wire), _COUNT_BATCH):
            records: dict[str, list[dict[str, Any]]] = {IMPRESSIONS: [], ENGAGEMENT_EVENTS: []}
            for topic, value in wire[start : start + _COUNT_BATCH]:
                decoded = decode_counted(topic, value)
                if decoded is not None:
                    records[topic].append(decoded)
            deltas = count_deltas(records[IMPRESSIONS], records[ENGAGEMENT_EVENTS])
            counted.update(deltas)
            store.apply(deltas, {(IMPRESSIONS, 0): start, (ENGAGEMENT_EVENTS, 0): start})
        seconds = time.perf_counter() - started
    finally:
        store.close()
    disk = compacted_disk_bytes(path)
    return {
        "bytes_per_post": disk / len(counted),
        "records_per_s": len(wire) / seconds,
        "params": {
            "records": len(wire),
            "counted_posts": len(counted),
            "impressions_per_engagement": 35 / 20,
            "batch": _COUNT_BATCH,
            "mb_per_million_posts": round(disk / len(counted) * MILLION / MB, 1),
        },
    }


# -- the user tables ----------------------------------------------------------------------------------------


def typical_user_state(args: argparse.Namespace, rng: np.random.Generator) -> dict[str, dict[int, bytes]]:
    """The four user tables' values for `args.users` users, written by the real stores."""
    tables: dict[str, dict[int, bytes]] = {name: {} for name in USER_TABLES}
    actions = UserActionSequences(tables["actions"])
    graph = SocialGraph(tables["graph"])
    served = ServedHistory(tables["served"])
    phoenix_actions = list(PHOENIX_ACTIONS)
    day = 86_400_000
    for user_id in range(1, args.users + 1):
        times = np.sort(NOW_MS - rng.integers(0, 30 * day, size=args.history))
        posts = rng.integers(1, 1 << 40, size=args.history)
        for ts_ms, post_id in zip(times.tolist(), posts.tolist(), strict=True):
            actions.record({
                "user_id": user_id, "post_id": post_id, "author_id": int(post_id % 1_000_003) + 1,
                "action": phoenix_actions[int(rng.integers(len(phoenix_actions)))], "surface": "home_for_you",
                "ts_ms": ts_ms, "dwell_ms": int(rng.integers(0, 60_000)) if rng.random() < 0.3 else None,
            })
        targets = rng.choice(1 << 30, size=args.follows + 15, replace=False) + 1
        relations = ["follow"] * args.follows + ["block"] * 5 + ["mute"] * 10
        for kind, target in zip(relations, targets.tolist(), strict=True):
            graph.apply({"type": kind, "user_id": user_id, "target_id": target, "keyword": None, "ts_ms": 0})
        for keyword in ("spoilers", "crypto giveaway", "election"):
            graph.apply({"type": "mute_keyword", "user_id": user_id, "target_id": None, "keyword": keyword,
                         "ts_ms": 0})
        feed_size = 35
        for request in range(-(-args.served // feed_size)):
            ids = rng.integers(1, 1 << 40, size=min(feed_size, args.served - request * feed_size)).tolist()
            served.record(user_id, ids, NOW_MS - 2 * day + request * 60_000)
        tables["answered"][user_id] = orjson.dumps([f"{rng.integers(1 << 63):032x}" for _ in
                                                    range(REMEMBERED_REQUESTS)])
    return tables


def measure_user_tables(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed + 1)
    started = time.perf_counter()
    tables = typical_user_state(args, rng)
    raw: dict[str, float] = {}
    disk: dict[str, float] = {}
    for name, values in tables.items():
        path = str(directory / f"user-{name}")
        db = Rdict(path, Options(raw_mode=True))
        try:
            for user_id, value in values.items():
                db[orjson.dumps(user_id)] = value  # Faust's JSON key serializer: b"42"
        finally:
            db.close()
        raw[name] = sum(len(orjson.dumps(user_id)) + len(value) for user_id, value in values.items()) / args.users
        disk[name] = compacted_disk_bytes(path) / args.users
    per_user = sum(disk.values())
    return {
        "bytes_per_user": per_user,
        "raw_bytes_per_user": sum(raw.values()),
        "params": {
            "users": args.users,
            "profile": {"history": args.history, "follows": args.follows, "blocked": 5, "muted": 10,
                        "muted_keywords": 3, "served_ids": args.served, "answered_ids": REMEMBERED_REQUESTS},
            "raw_bytes_per_user_by_table": {name: round(size, 1) for name, size in raw.items()},
            "disk_bytes_per_user_by_table": {name: round(size, 1) for name, size in disk.items()},
            "disk_mb_per_million_users": round(per_user * MILLION / MB, 1),
            "build_s": round(time.perf_counter() - started, 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    began = time.perf_counter()
    machine = {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
               "note": "2-core machine shared with other jobs; sizes are deterministic, RSS moves a little"}
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        directory = Path(tmp)
        replica, live = measure_post_replica(directory, args)
        print(f"post replica: {replica['live_posts']} live posts, {replica['bytes_per_post']:.0f} B/post on disk",
              flush=True)
        index = measure_retrieval_index(live, args)
        print(f"retrieval index: {index['bytes_per_post']:.0f} B/post held", flush=True)
        counts = measure_engagement_counts(directory, live, args)
        del live
        print(f"engagement counts: {counts['records_per_s']:.0f} records/s in process", flush=True)
        users = measure_user_tables(directory, args)
        print(f"user tables: {users['bytes_per_user']:.0f} B/user on disk", flush=True)
    extrapolated = "per million: linear extrapolation of the per-post / per-user figure"
    records = [
        record("capacity.post_replica.bytes_per_post", "disk_bytes_per_post", replica["bytes_per_post"], "bytes",
               None, **replica["params"], measured="SST bytes after flush and full compaction", **machine),
        record("capacity.post_replica.raw_bytes_per_post", "raw_bytes_per_post", replica["raw_bytes_per_post"],
               "bytes", None, live_posts=replica["live_posts"], measured="key + value bytes in the store", **machine),
        record("capacity.post_replica.rss_delta", "rss_delta_bytes", replica["rss_delta_bytes"], "bytes", None,
               live_posts=replica["live_posts"],
               measured="RSS after applying every post minus before opening the store; RocksDB's memtables and "
               "block cache (64 MiB) bound it, it does not grow with the posts", **machine),
        record("capacity.retrieval_index.bytes_per_post", "held_bytes_per_post", index["bytes_per_post"], "bytes",
               None, **index["params"], measured="row arrays + post-to-row dict + serialized faiss index",
               extrapolated=extrapolated, **machine),
        record("capacity.retrieval_index.rss_bytes_per_post", "rss_bytes_per_post", index["rss_bytes_per_post"],
               "bytes", None, posts=index["params"]["posts"], retrieval_dim=args.retrieval_dim,
               measured="RSS delta of building the index, per post", **machine),
        record("capacity.engagement_counts.bytes_per_post", "disk_bytes_per_post", counts["bytes_per_post"], "bytes",
               None, **counts["params"], measured="SST bytes after flush and full compaction, per counted post",
               **machine),
        record("capacity.engagement_counts.records_per_s", "records_per_s", counts["records_per_s"], "records/s",
               None, **counts["params"],
               measured="decode + count deltas + apply, in process, one thread, no Kafka consumer (an upper "
               "bound); every worker reads every impression and engagement", **machine),
        record("capacity.user_tables.bytes_per_user", "disk_bytes_per_user", users["bytes_per_user"], "bytes", None,
               **users["params"], measured="SST bytes of the four tables after flush and full compaction",
               extrapolated=extrapolated, **machine),
        record("capacity.user_tables.raw_bytes_per_user", "raw_bytes_per_user", users["raw_bytes_per_user"],
               "bytes", None, users=args.users, measured="key + value bytes (what the changelog topics hold)",
               **machine),
    ]
    path = write_results("capacity", records, args.out_dir)
    for entry in records:
        print(f"{entry['name']:46} {entry['value']:14.1f} {entry['unit']}")
    print(f"wrote {path} in {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
