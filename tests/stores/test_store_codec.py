import random

from stores import _codec


def test_keys_sort_bytewise_in_numeric_order_and_round_trip() -> None:
    rng = random.Random(3)
    values = [-(2**63), -1, 0, 1, 255, 256, 2**63 - 1] + [rng.randrange(-(2**63), 2**63) for _ in range(200)]
    keys = [_codec.key_i64(value) for value in values]
    assert all(len(key) == 8 for key in keys)
    assert sorted(keys) == [_codec.key_i64(value) for value in sorted(values)]
    assert [_codec.read_key_i64(b"x" + key, 1) for key in keys] == values


def test_pairs_and_integers_round_trip() -> None:
    pairs = [(1_700_000_000_000, 42), (-5, 2**62), (0, 0)]
    packed = _codec.pack_pairs(pairs)
    assert len(packed) == 16 * len(pairs)
    assert _codec.unpack_pairs(packed) == pairs
    assert _codec.unpack_pairs(b"") == []
    assert _codec.unpack_i64(_codec.pack_i64(-123)) == -123
