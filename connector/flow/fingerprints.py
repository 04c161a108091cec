"""[pure] The last payload sent per key, as an 8-byte fingerprint (SPEC §12): a change whose
payload has the fingerprint its key's last accepted call had changes nothing and is skipped as
``no_change``, even without Debezium's ``before``. The fingerprints are kept in the compacted
``output.state_topic`` and read back when partitions are assigned.

Memory is the point: one open-addressing table per partition, keys and fingerprints in two arrays
of 64-bit integers (a key is an 8-byte hash of its topic and Kafka key), at most 3/4 full, so a key
costs 16 bytes / load: at most 43 bytes just after the table doubled, about 28 on average, and no
Python object per key."""

from __future__ import annotations

import hashlib
import json
from array import array
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from connector.flow.lanes import Job
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.ports import States
    from connector.records import Payload

__all__ = ["Fingerprints", "Memory", "Table", "fingerprint", "key_id", "state_key"]

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

    def _grow(self) -> None:
        old = zip(self._keys, self._values, strict=True)
        bigger = Table(2 * len(self._keys))
        for key, value in old:
            if key != _EMPTY:
                bigger.put(key, value)
        self._keys, self._values = bigger._keys, bigger._values


class Fingerprints:
    """One :class:`Table` per owned partition."""

    def __init__(self) -> None:
        self._tables: dict[TopicPartitionKey, Table] = {}

    def __len__(self) -> int:
        return sum(len(table) for table in self._tables.values())

    @property
    def nbytes(self) -> int:
        return sum(table.nbytes for table in self._tables.values())

    def holds(self, tp: TopicPartitionKey) -> bool:
        """Whether ``tp``'s keys are kept (its partition exists in the state topic)."""
        return tp in self._tables

    def get(self, tp: TopicPartitionKey, key: bytes) -> int | None:
        """The fingerprint of ``key``'s last accepted payload, if known."""
        table = self._tables.get(tp)
        return None if table is None else table.get(key_id(state_key(tp[0], key)))

    def put(self, tp: TopicPartitionKey, key: bytes, value: int) -> None:
        self.load(tp, [(key_id(state_key(tp[0], key)), value)])

    def load(self, tp: TopicPartitionKey, entries: Iterable[tuple[int, int]]) -> None:
        """Key ids and fingerprints of ``tp``, later ones winning (as read back from the state
        topic)."""
        table = self._tables.setdefault(tp, Table())
        for key, value in entries:
            table.put(key, value)

    def forget(self, tps: Iterable[TopicPartitionKey]) -> None:
        """Partitions no longer owned: their keys may change elsewhere."""
        for tp in tps:
            self._tables.pop(tp, None)


class Memory:
    """What LeadSquared last accepted for each key of the owned partitions, as fingerprints kept
    in the state topic (through the :class:`~connector.flow.ports.States` port): a record whose
    payload it already accepted is skipped (``no_change``)."""

    def __init__(self, states: States) -> None:
        self._states, self._prints = states, Fingerprints()

    def __len__(self) -> int:
        return len(self._prints)

    def restore(self, tps: Collection[TopicPartitionKey]) -> None:
        """Newly assigned partitions: read their keys' fingerprints back. A partition the state
        topic does not have gets none (and none are written for it)."""
        for tp, entries in self._states.read(tps).items():
            self._prints.load(tp, entries)

    def forget(self, tps: Iterable[TopicPartitionKey]) -> None:
        self._prints.forget(tps)

    def unchanged(self, job: Job) -> bool:
        """Whether LeadSquared last accepted exactly this payload for the job's key."""
        key = job.record.key
        known = None if key is None else self._prints.get(job.tp, key)
        return known is not None and known == fingerprint(job.payload)

    def accepted(self, job: Job) -> None:
        """LeadSquared accepted the job's payload: remember it, here and in the state topic."""
        key = job.record.key
        if key is None or not self._prints.holds(job.tp):
            return
        value = fingerprint(job.payload)
        self._prints.put(job.tp, key, value)
        self._states.write(job.tp, state_key(job.tp[0], key), value)
