"""The engagement log: JSONL, one impression per line.

    {"user_id": int, "post_id": int, "author_id": int, "ts_ms": int, "surface": str,
     "actions": [NAME, ...], "request_id": str | null, "post_created_at_ms": int | null}

An empty `actions` list is an impression without engagement; lines sharing a `request_id` were shown to the
user together (one ranking request). Ids are positive (0 means "absent" to the model's hashing).
`post_created_at_ms` (optional: absent or null = unknown) is when the shown post was created (for a repost,
the repost itself: when it entered feeds), an integer >= 0 on the same clock as `ts_ms`; it gives the
candidate's age at the impression (`phoenix.age`). Writers omit it when unknown, so logs without creation
times are byte-identical to those from before the field existed.
"""

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from phoenix.jsonl import is_integer, iter_records, json_object
from topics.actions import ACTION_INDEX, NEGATIVE_WEIGHT_ACTIONS, PHOENIX_ACTIONS, actions_to_mask

_FIELDS = ("user_id", "post_id", "author_id", "ts_ms", "surface", "actions", "request_id")
_OPTIONAL_FIELDS = ("post_created_at_ms",)
_POSITIVE_ACTIONS_MASK = actions_to_mask([name for name in ACTION_INDEX if name not in NEGATIVE_WEIGHT_ACTIONS])
_PHOENIX_ACTIONS_MASK = actions_to_mask(PHOENIX_ACTIONS)


class LogFormatError(ValueError):
    """A log line that does not follow the format; the message names the file line (1-based)."""

    def __init__(self, line_no: int, reason: str) -> None:
        super().__init__(f"engagement log line {line_no}: {reason}")
        self.line_no = line_no
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Impression:
    user_id: int
    post_id: int
    author_id: int
    ts_ms: int
    surface: str
    actions: tuple[str, ...]
    request_id: str | None = None
    post_created_at_ms: int | None = None  # None = unknown

    @property
    def action_mask(self) -> int:
        return actions_to_mask(self.actions)

    @property
    def engaged(self) -> bool:
        """Any action the model reads (its 19 heads), negative ones included: the line belongs in the user's
        history. Optional actions alone (e.g. not_dwelled) do not, as in stores.action_sequences."""
        return bool(self.action_mask & _PHOENIX_ACTIONS_MASK)

    @property
    def positive(self) -> bool:
        """At least one non-negative action: the relevance label used by the ranking metrics."""
        return bool(self.action_mask & _POSITIVE_ACTIONS_MASK)

    @property
    def post_age_ms(self) -> float:
        """The post's age at this impression in ms; NaN when its creation time is unknown."""
        return float("nan") if self.post_created_at_ms is None else float(self.ts_ms - self.post_created_at_ms)

    def to_json(self) -> dict[str, object]:
        record: dict[str, object] = {
            "user_id": self.user_id,
            "post_id": self.post_id,
            "author_id": self.author_id,
            "ts_ms": self.ts_ms,
            "surface": self.surface,
            "actions": list(self.actions),
            "request_id": self.request_id,
        }
        if self.post_created_at_ms is not None:
            record["post_created_at_ms"] = self.post_created_at_ms
        return record


def _require_id(record: dict[str, object], key: str, line_no: int, allow_zero: bool = False) -> int:
    value = record[key]
    if not is_integer(value):
        raise LogFormatError(line_no, f"{key!r} must be an integer, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise LogFormatError(line_no, f"{key!r} must be {'>= 0' if allow_zero else 'positive'}, got {value}")
    return value


def parse_line(line: str | bytes, line_no: int) -> Impression:
    """One log line as an Impression; raises LogFormatError naming `line_no` on any problem."""
    record = json_object(line, line_no, LogFormatError)
    missing = [key for key in _FIELDS if key not in record]
    if missing:
        raise LogFormatError(line_no, f"missing field(s) {', '.join(missing)}")
    unknown = sorted(set(record) - set(_FIELDS) - set(_OPTIONAL_FIELDS))
    if unknown:
        raise LogFormatError(line_no, f"unknown field(s) {', '.join(unknown)}")
    surface = record["surface"]
    if not isinstance(surface, str) or not surface:
        raise LogFormatError(line_no, f"'surface' must be a non-empty string, got {surface!r}")
    actions = record["actions"]
    if not isinstance(actions, list):
        raise LogFormatError(line_no, f"'actions' must be a list, got {actions!r}")
    for name in actions:
        if name not in ACTION_INDEX:
            raise LogFormatError(line_no, f"unknown action {name!r}")
    request_id = record["request_id"]
    if request_id is not None and not isinstance(request_id, str):
        raise LogFormatError(line_no, f"'request_id' must be a string or null, got {request_id!r}")
    created = record.get("post_created_at_ms")
    if created is not None:
        created = _require_id(record, "post_created_at_ms", line_no, allow_zero=True)
    return Impression(
        user_id=_require_id(record, "user_id", line_no),
        post_id=_require_id(record, "post_id", line_no),
        author_id=_require_id(record, "author_id", line_no),
        ts_ms=_require_id(record, "ts_ms", line_no, allow_zero=True),
        surface=surface,
        # Duplicates carry no information for a multi-hot label; keep the first-seen order.
        actions=tuple(dict.fromkeys(actions)),
        request_id=request_id,
        post_created_at_ms=created,
    )


def iter_log(path: str | Path) -> Iterator[Impression]:
    """Impressions in file order; blank lines are skipped (but still counted for line numbers)."""
    return iter_records(path, parse_line)


def read_log(path: str | Path) -> list[Impression]:
    return list(iter_log(path))


def write_log(path: str | Path, impressions: Iterable[Impression]) -> int:
    """Write impressions as JSONL atomically (temp file in the same folder, then rename); returns a count."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; a log is ordinary data
        with os.fdopen(fd, "wb") as handle:
            for impression in impressions:
                handle.write(orjson.dumps(impression.to_json()))
                handle.write(b"\n")
                count += 1
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return count


def file_sha256(path: str | Path) -> str:
    """Content hash of a log file, recorded in checkpoints so evaluation can tell it sees the same data."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
