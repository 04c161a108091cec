"""[pure] The last payload sent per key, as an 8-byte fingerprint (SPEC §12), and the tables that
hold them for the owned partitions.

Memory is the point: one open-addressing table per partition, keys and fingerprints in two arrays
of 64-bit integers (a key is an 8-byte hash of its topic and Kafka key), at most 3/4 full, so a key
costs 16 bytes / load: at most 43 bytes just after the table doubled, about 28 on average, and no
Python object per key. A forgotten key leaves no trace (backward-shift deletion), so a table holds
at most the keys whose fingerprint is known."""

from __future__ import annotations

import hashlib
import json
from array import array
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, KeysView

    from connector.flow.offsets import TopicPartitionKey
    from connector.records import Payload

__all__ = ["Fingerprints", "Table", "fingerprint", "key_id", "state_key"]

_EMPTY = 0
_MASK = (1 << 64) - 1
_FIRST = 1024  # slots of a new table


def _hash64(data: bytes) -> int:
    """A nonzero 64-bit hash (0 marks an empty slot)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") or 1


def state_key(topic: str, key: bytes) -> bytes:
    """The state topic's record key for a Kafka key of ``topic``."""
    return topic.encode() + b"\x00" + key


def key_id(state: bytes) -> int:
    """The 64-bit id the tables keep for a state record key."""
    return _hash64(state)


def fingerprint(payload: Payload) -> int:
    """The 64-bit fingerprint of a call's content: operation, query parameters and body."""
    text = json.dumps([payload.operation, payload.params, payload.body], sort_keys=True)
    return _hash64(text.encode())


class Table:
    """Key id → fingerprint, by linear probing in two arrays of unsigned 64-bit integers."""

    __slots__ = ("_keys", "_size", "_values")

    def __init__(self, slots: int = _FIRST) -> None:
        self._keys = array("Q", bytes(8 * slots))
        self._values = array("Q", bytes(8 * slots))
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes of its two arrays (the table's memory, less a constant)."""
        return 2 * self._keys.itemsize * len(self._keys)

    def get(self, key: int) -> int | None:
        keys, mask = self._keys, len(self._keys) - 1
        slot = key & mask
        while (found := keys[slot]) != _EMPTY:
            if found == key:
                return self._values[slot]
            slot = (slot + 1) & mask
        return None

    def put(self, key: int, value: int) -> None:
        if 4 * (self._size + 1) > 3 * len(self._keys):
            self._grow()
        keys, mask = self._keys, len(self._keys) - 1
        slot = key & mask
        while (found := keys[slot]) != _EMPTY and found != key:
            slot = (slot + 1) & mask
        if found == _EMPTY:
            keys[slot] = key
            self._size += 1
        self._values[slot] = value & _MASK

    def delete(self, key: int) -> bool:
        """Remove ``key``; whether it was there. The keys after it in its probe run move back into
        the hole when their home slot allows it, so lookups never need tombstones."""
        keys, values, mask = self._keys, self._values, len(self._keys) - 1
        hole = key & mask
        while (found := keys[hole]) != key:
            if found == _EMPTY:
                return False
            hole = (hole + 1) & mask
        probe = (hole + 1) & mask
        while (other := keys[probe]) != _EMPTY:
            if (probe - (other & mask)) & mask >= (probe - hole) & mask:  # home at or before hole
                keys[hole], values[hole] = other, values[probe]
                hole = probe
            probe = (probe + 1) & mask
        keys[hole], values[hole] = _EMPTY, 0
        self._size -= 1
        return True

    def _grow(self) -> None:
        old = zip(self._keys, self._values, strict=True)
        bigger = Table(2 * len(self._keys))
        for key, value in old:
            if key != _EMPTY:
                bigger.put(key, value)
        self._keys, self._values = bigger._keys, bigger._values


class Fingerprints:
    """One :class:`Table` per held partition."""

    def __init__(self) -> None:
        self._tables: dict[TopicPartitionKey, Table] = {}

    def __len__(self) -> int:
        return sum(len(table) for table in self._tables.values())

    @property
    def nbytes(self) -> int:
        return sum(table.nbytes for table in self._tables.values())

    def held(self) -> KeysView[TopicPartitionKey]:
        """The partitions whose keys are kept."""
        return self._tables.keys()

    def holds(self, tp: TopicPartitionKey) -> bool:
        """Whether ``tp``'s keys are kept (its partition exists in the state topic)."""
        return tp in self._tables

    def get(self, tp: TopicPartitionKey, key: bytes) -> int | None:
        """The fingerprint kept for ``key``, if any."""
        table = self._tables.get(tp)
        return None if table is None else table.get(key_id(state_key(tp[0], key)))

    def put(self, tp: TopicPartitionKey, key: bytes, value: int) -> None:
        self.load(tp, [(key_id(state_key(tp[0], key)), value)])

    def drop(self, tp: TopicPartitionKey, key: bytes) -> bool:
        """Forget ``key``'s fingerprint; whether one was kept."""
        table = self._tables.get(tp)
        return table is not None and table.delete(key_id(state_key(tp[0], key)))

    def adopt(self, tp: TopicPartitionKey, table: Table) -> None:
        """Keep ``table`` as ``tp``'s (replacing any other)."""
        self._tables[tp] = table

    def load(self, tp: TopicPartitionKey, entries: Iterable[tuple[int, int]]) -> None:
        """Key ids and fingerprints of ``tp``, later ones winning."""
        table = self._tables.setdefault(tp, Table())
        for key, value in entries:
            table.put(key, value)

    def forget(self, tps: Iterable[TopicPartitionKey]) -> None:
        """Partitions no longer held: their keys may change elsewhere."""
        for tp in tps:
            self._tables.pop(tp, None)
