"""A write-back cache over a user table: the latest value per key, written to the table once per batch.

The stores (action sequences, social graph, served history) read and write one value per user. Processing a
batch of events, several events of one user would each write that user's value and produce a changelog
record; through this cache they write here, every read sees the pending value, and `take_pending` hands the
batch's last value of each key (or `None` for a deletion) to whoever writes the table and its changelog: one
write and one changelog record per key per batch (the way Quix Streams' state transactions do it).

Because each key keeps only its last value and the table holds values, not events, applying `take_pending`
to the table gives exactly the state that writing every event's value in order would have given.
"""

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

Read = Callable[[int], bytes | None]


class WriteBackCache(MutableMapping[int, bytes]):
    """Reads go through to `read` unless the key has a pending value; writes stay pending until taken."""

    def __init__(self, read: Read) -> None:
        self._read = read
        self._pending: dict[int, bytes | None] = {}

    def get(self, key: int, default: Any = None) -> Any:
        value = self._pending[key] if key in self._pending else self._read(key)
        return default if value is None else value

    def __getitem__(self, key: int) -> bytes:
        value = self._pending[key] if key in self._pending else self._read(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and self.get(key) is not None

    def __setitem__(self, key: int, value: bytes) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"table values are bytes, not {type(value).__name__}")
        self._pending[key] = value

    def __delitem__(self, key: int) -> None:
        if self.get(key) is None:
            raise KeyError(key)
        self._pending[key] = None

    def __iter__(self) -> Iterator[int]:
        raise TypeError("a user table is read by key; iterate the table itself")

    def __len__(self) -> int:
        raise TypeError("a user table is read by key; ask the table itself")

    @property
    def pending(self) -> int:
        return len(self._pending)

    def take_pending(self) -> dict[int, bytes | None]:
        """The writes since the last call (key -> last value, None = deleted); they are no longer pending."""
        pending, self._pending = self._pending, {}
        return pending
