"""Trimming the post store: posts and timeline entries older than the retention, tombstones older than the
retention plus a margin. Runs in the background (the caller schedules it), chunked into bounded write batches
taken under the store's write lock one at a time, so applies interleave and a crash leaves a valid store.
"""

import threading
from typing import Final

import numpy as np
from rocksdict import Rdict

from stores import _codec
from stores.post_layout import (
    CONTENT,
    CREATED,
    PAIR_SIZE,
    POST,
    TOMBSTONE,
    TOMBSTONE_TIME,
    Batch,
    decode_index_value,
    mask_kinds,
    scan_keys,
    timeline_key,
)

TRIM_CHUNK: Final = 5_000  # posts per trim WriteBatch: bounds memory and lock hold time


def trim(
    db: Rdict, write_lock: threading.Lock, now_ms: int, retention_ms: int, tombstone_margin_ms: int
) -> list[int]:
    """Drop posts older than the retention (and their timeline entries); forget old tombstones.

    Returns the ids of the posts dropped (the worker removes them from the retrieval index too). Work is
    split into WriteBatches of bounded size, each consistent on its own, so a trim interrupted by a crash
    leaves a valid store.
    """
    post_cutoff = now_ms - retention_ms
    dropped: list[int] = []
    while True:
        with write_lock:
            index_keys = scan_keys(db, CREATED, CREATED + _codec.key_i64(post_cutoff), TRIM_CHUNK)
            if not index_keys:
                break
            batch = Batch(db)
            timelines: set[tuple[int, int]] = set()
            for index_key, index_value in zip(index_keys, _codec.multi_get(db, index_keys), strict=True):
                batch.delete(index_key)
                if index_value is None:
                    continue
                author_id, mask = decode_index_value(index_value)
                post_key = POST + index_key[9:17]
                if batch.get(post_key) is not None:
                    batch.delete(post_key)
                    batch.delete(CONTENT + index_key[9:17])
                    batch.count_delta -= 1
                    dropped.append(_codec.read_key_i64(index_key, 9))
                timelines.update((author_id, kind) for kind in mask_kinds(mask))
            for author_id, kind in timelines:
                _timeline_cut(batch, author_id, kind, post_cutoff)
            batch.commit()
        if len(index_keys) < TRIM_CHUNK:
            break
    _trim_tombstones(db, write_lock, now_ms - retention_ms - tombstone_margin_ms)
    return dropped


def _timeline_cut(batch: Batch, author_id: int, kind: int, cutoff_ms: int) -> None:
    """Drop a timeline's entries created before `cutoff_ms` (they sit at its tail)."""
    key = timeline_key(author_id, kind)
    current = batch.get(key)
    if not current:
        return
    times = np.frombuffer(current, dtype="<i8")[0::2]
    keep = int(np.count_nonzero(times >= cutoff_ms))  # times are non-increasing
    if keep == len(times):
        return
    if keep:
        batch.put(key, current[: keep * PAIR_SIZE])
    else:
        batch.delete(key)


def _trim_tombstones(db: Rdict, write_lock: threading.Lock, cutoff_ms: int) -> None:
    while True:
        with write_lock:
            index_keys = scan_keys(db, TOMBSTONE_TIME, TOMBSTONE_TIME + _codec.key_i64(cutoff_ms), TRIM_CHUNK)
            if not index_keys:
                return
            batch = Batch(db)
            for index_key in index_keys:
                batch.delete(index_key)
                tombstone_key = TOMBSTONE + index_key[9:17]
                stored = batch.get(tombstone_key)
                if stored is not None and _codec.unpack_i64(stored[:8]) < cutoff_ms:
                    batch.delete(tombstone_key)
            batch.commit()
        if len(index_keys) < TRIM_CHUNK:
            return
