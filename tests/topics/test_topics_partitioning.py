"""Kafka's murmur2 partitioner against published vectors and aiokafka's independent implementation."""

import random

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from topics.limits import MAX_ID
from topics.partitioning import murmur2, partition_for_id, partition_for_key, to_positive

# Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2.
KAFKA_UTILS_TEST_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]
# Decimal keys like ours, from kafkajs (tulios/kafkajs) src/producer/partitioners/defaultJava/murmur2.spec.js,
# generated there by running the Java client's Utils.murmur2 (its Test.java).
KAFKAJS_JAVA_VECTORS = [
    (b"0", 971027396),
    (b"1", -1993445489),
    (b"128", -326012175),
    (b"2187", -1508407203),
    (b"16384", -325739742),
    (b"78125", -1654490814),
    (b"279936", 1462227128),
    (b"823543", -2014198330),
    (b"2097152", 607668903),
    (b"4782969", -1182699775),
    (b"10000000", -1830336757),
    (b"19487171", -1603849305),
    (b"35831808", -857013643),
    (b"62748517", -1167431028),
    (b"105413504", -381294639),
    (b"170859375", -1658323481),
    (b"100:48069", 1009543857),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_UTILS_TEST_VECTORS + KAFKAJS_JAVA_VECTORS)
def test_murmur2_matches_the_java_client(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_murmur2_of_no_bytes_is_the_mixed_seed() -> None:
    # Value the Java client returns for an empty array (also used as a vector by Rust Kafka clients).
    assert murmur2(b"") == 275646681


def test_murmur2_agrees_with_aiokafka_on_random_bytes_of_every_tail_length() -> None:
    rng = random.Random(20240611)
    for length in range(0, 64):
        for _ in range(20):
            data = rng.randbytes(length)
            assert murmur2(data) & 0xFFFFFFFF == aiokafka_murmur2(data)


@pytest.mark.parametrize(("number", "positive"), [(-790332482, 1357151166), (5, 5), (-(2**31), 0), (-1, 2**31 - 1)])
def test_to_positive_clears_the_sign_bit(number: int, positive: int) -> None:
    assert to_positive(number) == positive


def test_partition_for_key_is_the_default_partitioner() -> None:
    # toPositive(murmur2("foobar")) = 1357151166.
    assert partition_for_key(b"foobar", 10) == 1357151166 % 10 == 6
    assert partition_for_key(b"foobar", 50) == 16
    assert partition_for_key(b"foobar", 1) == 0


@pytest.mark.parametrize("count", [0, -3])
def test_partition_counts_must_be_positive(count: int) -> None:
    with pytest.raises(ValueError):
        partition_for_key(b"1", count)


def test_partition_for_id_hashes_the_decimal_key() -> None:
    # murmur2(b"128") = -326012175; toPositive = 1821471473.
    assert partition_for_id(128, 7) == 1821471473 % 7
    for entity_id in (1, 42, 10_000_000, MAX_ID):
        for count in (1, 4, 12, 100):
            assert partition_for_id(entity_id, count) == partition_for_key(str(entity_id).encode(), count)


def test_partition_for_id_spreads_ids_over_all_partitions() -> None:
    counts = [0] * 8
    for entity_id in range(1, 8_001):
        counts[partition_for_id(entity_id, 8)] += 1
    assert min(counts) > 800  # 1,000 expected per partition


def test_partition_for_id_rejects_invalid_ids() -> None:
    with pytest.raises(ValueError):
        partition_for_id(0, 4)
