from pathlib import Path

import numpy as np
import orjson
import pytest

from phoenix.log import Impression, LogFormatError, file_sha256, parse_line, read_log, write_log

GOOD = {
    "user_id": 1,
    "post_id": 10,
    "author_id": 2,
    "ts_ms": 1000,
    "surface": "home_for_you",
    "actions": ["favorite", "reply"],
    "request_id": "r1",
}


def _line(**changes: object) -> bytes:
    record = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            del record[key]
        else:
            record[key] = value
    return orjson.dumps(record)


def test_round_trip(tmp_path: Path) -> None:
    impressions = [
        Impression(1, 10, 2, 1000, "home_for_you", ("favorite", "reply"), "r1"),
        Impression(1, 11, 3, 1000, "home_for_you", (), "r1"),
        Impression(4, 12, 2, 2000, "search", ("block_author",), None),
    ]
    path = tmp_path / "log.jsonl"
    assert write_log(path, impressions) == 3
    assert read_log(path) == impressions
    assert len(file_sha256(path)) == 64


def test_impression_flags() -> None:
    assert Impression(1, 2, 3, 0, "other", (), None).engaged is False
    blocked = Impression(1, 2, 3, 0, "other", ("block_author",), None)
    assert blocked.engaged and not blocked.positive
    liked = Impression(1, 2, 3, 0, "other", ("favorite",), None)
    assert liked.positive and liked.action_mask == 1
    # Optional actions alone: not history (the model reads none of them), and scrolling past is not positive.
    scrolled = Impression(1, 2, 3, 0, "other", ("not_dwelled",), None)
    assert not scrolled.engaged and not scrolled.positive
    opened = Impression(1, 2, 3, 0, "other", ("open_link",), None)
    assert opened.positive and not opened.engaged


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (_line(post_id=...), "missing field(s) post_id"),
        (_line(extra=1), "unknown field(s) extra"),
        (_line(user_id="1"), "'user_id' must be an integer"),
        (_line(user_id=True), "'user_id' must be an integer"),
        (_line(post_id=0), "'post_id' must be positive"),
        (_line(ts_ms=-5), "'ts_ms' must be >= 0"),
        (_line(surface=""), "'surface'"),
        (_line(actions="favorite"), "'actions' must be a list"),
        (_line(actions=["favourite"]), "unknown action 'favourite'"),
        (_line(request_id=7), "'request_id' must be a string or null"),
        (_line(post_created_at_ms="5"), "'post_created_at_ms' must be an integer"),
        (_line(post_created_at_ms=1.5), "'post_created_at_ms' must be an integer"),
        (_line(post_created_at_ms=False), "'post_created_at_ms' must be an integer"),
        (_line(post_created_at_ms=-1), "'post_created_at_ms' must be >= 0"),
    ],
)
def test_parse_line_rejects(line: bytes, reason: str) -> None:
    with pytest.raises(LogFormatError) as info:
        parse_line(line, 7)
    assert info.value.line_no == 7
    assert "line 7" in str(info.value)
    assert reason in str(info.value)


def test_reader_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    # Blank line 2 is skipped but still counted: the bad record is on file line 4.
    path.write_bytes(b"\n".join([_line(), b"", _line(), _line(actions=["nope"])]) + b"\n")
    with pytest.raises(LogFormatError, match="line 4: unknown action 'nope'"):
        read_log(path)


def test_duplicate_actions_collapse() -> None:
    assert parse_line(_line(actions=["favorite", "favorite"]), 1).actions == ("favorite",)


def test_post_created_at_is_optional() -> None:
    assert parse_line(_line(), 1).post_created_at_ms is None  # absent: unknown
    assert parse_line(_line(post_created_at_ms=None), 1).post_created_at_ms is None
    line = parse_line(_line(post_created_at_ms=400), 1)
    assert line.post_created_at_ms == 400 and line.post_age_ms == 600.0
    assert np.isnan(parse_line(_line(), 1).post_age_ms)


def test_round_trip_with_creation_times_and_unknown_left_out(tmp_path: Path) -> None:
    impressions = [
        Impression(1, 10, 2, 1000, "home_for_you", ("favorite",), "r1", 0),
        Impression(1, 11, 3, 1000, "home_for_you", (), "r1", None),
    ]
    path = tmp_path / "log.jsonl"
    write_log(path, impressions)
    assert read_log(path) == impressions
    first, second = (orjson.loads(line) for line in path.read_bytes().splitlines())
    assert first["post_created_at_ms"] == 0
    assert "post_created_at_ms" not in second  # unknown is written as before the field existed
