"""docs/topics.md stays true: every example decodes, and every field it carries is documented."""

import re
from pathlib import Path

import pytest

from topics.dead_letters import dead_letter_headers
from topics.specs import TOPICS
from topics.validation import DECODER_BY_TOPIC, InvalidRecord, decode_engagement

DOC = Path(__file__).resolve().parents[2] / "docs" / "topics.md"


def sections() -> dict[str, str]:
    """The text of each `## \\`topic\\`` section, by topic name."""
    parts = re.split(r"^## `([a-z-]+)`$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def json_examples(section: str) -> list[bytes]:
    return [block.encode() for block in re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)]


def test_every_topic_has_a_section() -> None:
    assert set(sections()) == {spec.name for spec in TOPICS}


@pytest.mark.parametrize("topic", sorted(DECODER_BY_TOPIC))
def test_the_examples_decode_and_their_fields_are_documented(topic: str) -> None:
    section = sections()[topic]
    examples = json_examples(section)
    assert len(examples) >= 1
    for example in examples:
        record = DECODER_BY_TOPIC[topic](example)
        value = record.to_dict()  # type: ignore[attr-defined]
        fields = set(value)
        for post in value.get("posts", []):
            fields |= set(post) | set(post.get("explain", {}))
        explain = value.get("explain")
        if isinstance(explain, dict):  # a ranked feed's (a feed request's is a flag)
            fields |= set(explain) | {name for stage in explain["stages"] for name in stage}
        undocumented = {name for name in fields if f"| `{name}` |" not in section}
        assert not undocumented, f"{topic}: fields missing from the tables: {sorted(undocumented)}"


def test_the_dead_letter_example_is_what_the_code_produces() -> None:
    section = sections()["dead-letters"]
    example = re.search(r"```text\n(.*?)```", section, flags=re.DOTALL)
    assert example is not None
    value = re.search(r"^value: +b'(.*)'$", example.group(1), flags=re.MULTILINE)
    assert value is not None
    with pytest.raises(InvalidRecord) as info:
        decode_engagement(value.group(1).encode())
    shown = dict(re.findall(r"(foryou\.dlq\.[a-z_.]+)=(.*)", example.group(1)))
    headers = dead_letter_headers(
        reason=info.value.reason,
        detail=info.value.detail,
        source_topic=shown["foryou.dlq.source.topic"],
        source_partition=int(shown["foryou.dlq.source.partition"]),
        source_offset=int(shown["foryou.dlq.source.offset"]),
        failed_at_ms=int(shown["foryou.dlq.failed_at_ms"]),
    )
    assert shown == {name: value.decode() for name, value in headers}
    documented = re.findall(r"\| `(foryou\.dlq\.[a-z_.]+)` \|", section)
    assert documented == [name for name, _ in headers]
