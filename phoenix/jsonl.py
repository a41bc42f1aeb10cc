"""JSON Lines reading shared by the engagement log (`phoenix.log`) and the posts file (`phoenix.posts`)."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeGuard, TypeVar

import orjson

Record = TypeVar("Record")
LineError = Callable[[int, str], ValueError]  # (1-based file line, reason) -> the file format's own error


def iter_records(path: str | Path, parse: Callable[[bytes, int], Record]) -> Iterator[Record]:
    """`parse(line, line_no)` of every non-blank line, in file order (blank lines still count as lines)."""
    with open(path, "rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                yield parse(line, line_no)


def json_object(line: str | bytes, line_no: int, error: LineError) -> dict[str, object]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise error(line_no, f"not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise error(line_no, "expected a JSON object")
    return record


def is_integer(value: object) -> TypeGuard[int]:
    """A JSON integer: bool is an int subclass in Python, but a JSON true is never a valid number."""
    return isinstance(value, int) and not isinstance(value, bool)
