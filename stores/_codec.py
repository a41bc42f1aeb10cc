"""Byte encodings shared by the stores: order-preserving keys, little-endian integers, packed pairs, JSON;
and the typed RocksDB multi-get they all use.

Keys use big-endian with the sign bit flipped so that RocksDB's bytewise order equals numeric order for any
signed 64-bit value; values use little-endian so that numpy can read packed arrays without a copy.
Nothing here is pickled: values are either struct-packed or orjson.
"""

import struct
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import orjson
from rocksdict import Rdict

_SIGN_FLIP = 1 << 63
I64 = struct.Struct("<q")
PAIR = struct.Struct("<qq")  # (int64, int64), little-endian: 16 bytes

dumps = orjson.dumps
loads = orjson.loads


def key_i64(value: int) -> bytes:
    """8 bytes whose bytewise order is the numeric order of the signed 64-bit `value`."""
    return (value + _SIGN_FLIP).to_bytes(8, "big")


def read_key_i64(data: bytes, offset: int = 0) -> int:
    return int.from_bytes(data[offset : offset + 8], "big") - _SIGN_FLIP


def pack_i64(value: int) -> bytes:
    return I64.pack(value)


def unpack_i64(data: bytes) -> int:
    value: int = I64.unpack(data)[0]
    return value


def multi_get(db: Rdict, keys: Sequence[bytes]) -> list[bytes | None]:
    """The values of `keys` in one multi-get, None where absent (rocksdict's annotations type neither a list
    of bytes keys nor the list it returns)."""
    if not keys:
        return []
    return cast("list[bytes | None]", db.get(cast(Any, keys)))


def pack_pairs(pairs: Iterable[tuple[int, int]]) -> bytes:
    return b"".join(PAIR.pack(a, b) for a, b in pairs)


def unpack_pairs(data: bytes) -> list[tuple[int, int]]:
    return list(PAIR.iter_unpack(data))


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000
