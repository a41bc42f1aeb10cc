"""Kafka's default key partitioner, in pure Python: `toPositive(murmur2(keyBytes)) % numPartitions`.

This is what the Java client (and aiokafka, and librdkafka's "murmur2_random") does with a non-null key.
The app repartitions every user-keyed input with `partition_for_id`, so records land on the same
partition whatever partitioner their producer used (librdkafka's default, "consistent_random", hashes
with CRC32 instead). foryou's own producers set `LIBRDKAFKA_PARTITIONER`, so every record it writes
(answers, impressions, dead letters, client and world events) sits where a Java consumer expects its key.
"""

from typing import Final

from topics.schemas import key_bytes

# librdkafka's name for the Java client's partitioner (murmur2 for keys, random for null keys).
LIBRDKAFKA_PARTITIONER: Final = "murmur2_random"

# Constants of org.apache.kafka.common.utils.Utils.murmur2 (MurmurHash2, 32-bit, fixed seed).
_SEED: Final = 0x9747B28C
_M: Final = 0x5BD1E995
_R: Final = 24
_MASK32: Final = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Utils.murmur2 of the Java client: the 32-bit hash as a signed int, as Java returns it."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    whole = length & ~3
    for start in range(0, whole, 4):
        k = int.from_bytes(data[start : start + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> _R
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    # The Java switch falls through: 3 trailing bytes mix in all three, then multiply once.
    trailing = length & 3
    if trailing == 3:
        h ^= data[whole + 2] << 16
    if trailing >= 2:
        h ^= data[whole + 1] << 8
    if trailing >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(number: int) -> int:
    """Utils.toPositive: clears the sign bit (not abs, so that -2^31 maps to 0)."""
    return number & 0x7FFFFFFF


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """The partition the Java client's default partitioner picks for a non-null key."""
    if num_partitions < 1:
        raise ValueError(f"num_partitions must be at least 1, got {num_partitions}")
    return to_positive(murmur2(key)) % num_partitions


def partition_for_id(entity_id: int, num_partitions: int) -> int:
    """The partition of an id-keyed record: partition_for_key over its wire key (decimal UTF-8)."""
    return partition_for_key(key_bytes(entity_id), num_partitions)
