"""A table of hostile values: every decoder must refuse each with InvalidRecord and the expected reason."""

import pytest

from topics.limits import MAX_PAYLOAD_BYTES
from topics.validation import DECODER_BY_TOPIC, InvalidRecord

TEN_MB = 10 * 1024 * 1024

# (name, value, reason) for values that no topic may accept.
HOSTILE: list[tuple[str, bytes | None, str]] = [
    ("none value (tombstone)", None, "empty"),
    ("empty bytes", b"", "empty"),
    ("10 MB of garbage", b"\x00" * TEN_MB, "too_large"),
    ("10 MB of valid JSON", b'{"v":1,"pad":"' + b"a" * TEN_MB + b'"}', "too_large"),
    ("deeply nested arrays", b"[" * 100_000 + b"]" * 100_000, "not_json"),
    ("deeply nested objects", b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "not_json"),
    ("nesting inside a record", b'{"v":1,"x":' + b"[" * 2_000 + b"]" * 2_000 + b"}", "not_json"),
    ("whitespace only", b"   \n\t ", "not_json"),
    ("nul byte", b"\x00", "not_json"),
    ("truncated object", b'{"v":1,"user_id":4', "not_json"),
    ("trailing garbage", b'{"v":1}{"v":1}', "not_json"),
    ("single quotes", b"{'v':1}", "not_json"),
    ("comments", b'{"v":1 /* hi */}', "not_json"),
    ("byte order mark", b'\xef\xbb\xbf{"v":1}', "not_json"),
    ("NaN", b"NaN", "not_json"),
    ("Infinity value", b'{"v":Infinity}', "not_json"),
    ("lone surrogate escape", b'{"v":1,"text":"\\ud800"}', "not_json"),
    ("invalid UTF-8 byte", b'{"v":1,"text":"\xff"}', "not_utf8"),
    ("overlong UTF-8", b'{"v":1,"text":"\xc0\xaf"}', "not_utf8"),
    ("UTF-8 encoded surrogate", b'{"v":1,"text":"\xed\xa0\x80"}', "not_utf8"),
    ("latin-1 text", '{"v":1,"text":"café"}'.encode("latin-1"), "not_utf8"),
    ("UTF-16", '{"v":1}'.encode("utf-16"), "not_utf8"),
    ("JSON array", b"[1,2,3]", "not_object"),
    ("JSON array of a record", b'[{"v":1}]', "not_object"),
    ("JSON string", b'"{\\"v\\":1}"', "not_object"),
    ("JSON number", b"42", "not_object"),
    ("JSON true", b"true", "not_object"),
    ("JSON null", b"null", "not_object"),
    ("empty object", b"{}", "missing_field"),
    ("v as a string", b'{"v":"1"}', "wrong_type"),
    ("v as true", b'{"v":true}', "wrong_type"),
    ("v as a float", b'{"v":1.0}', "wrong_type"),
    ("future version", b'{"v":2}', "unknown_version"),
    ("huge version", b'{"v":18446744073709551615}', "unknown_version"),
    ("only a version", b'{"v":1}', "missing_field"),
    ("20k keys", b'{"v":1,' + b",".join(b'"k%d":0' % i for i in range(20_000)) + b"}", "missing_field"),
]


@pytest.mark.parametrize("topic", sorted(DECODER_BY_TOPIC))
@pytest.mark.parametrize(("name", "value", "reason"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_values_are_refused(topic: str, name: str, value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        DECODER_BY_TOPIC[topic](value)
    assert info.value.reason == reason, f"{name} on {topic}: {info.value}"
    assert len(info.value.detail) <= 300


def test_the_hostile_bound_cases_really_exceed_the_bound() -> None:
    sized = [value for _, value, reason in HOSTILE if reason == "too_large"]
    assert sized and all(value is not None and len(value) > 1_000_000 > MAX_PAYLOAD_BYTES for value in sized)
