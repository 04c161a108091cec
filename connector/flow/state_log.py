"""[pure] The records of the state topic and how a partition's are read back (SPEC §12, §2.9).

A source partition ``(topic, p)`` keeps its records in partition ``p`` of the state topic. Each
owner of the partition writes under a **tenure**: a random 64-bit id drawn when it reads the
partition back. Records:

- a **fingerprint**: key ``topic \\0 source key``; value the 8-byte fingerprint of the payload
  LeadSquared was last sent and accepted for the key, then the writer's tenure (8 bytes; a
  value of 8 bytes alone, as earlier releases wrote, has tenure 0); a tombstone forgets it;
- an **open** marker (key ``\\0 O topic``, value the tenure): an owner is about to change
  LeadSquared for the partition;
- a **reset** marker (key ``\\0 R topic``, value the tenure): everything of the topic before it is
  void (an owner that could not trust what it read starts afresh);
- a **seal** (key ``\\0 S topic``, value the tenure, then the offset its owner read back to): that
  owner had every one of its writes acknowledged.

A topic name never starts with a zero byte, so marker keys never meet fingerprint keys, and each
marker kind has a key of its own per topic, so compaction keeps the latest of each.

:class:`Replay` reads them back in offset order. Its table is **trusted** only when the read
reached the partition's end and either the topic has no record, or the latest seal comes after
every other record and every record after the offset its owner read back to (reset and tombstones
aside) carries its tenure: then the fingerprints are exactly those that owner had acknowledged,
and a seal that lands late, or an earlier owner's write that lands after a read, proves nothing.
Why that suffices is :mod:`connector.flow.fingerprints`' docstring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from connector.flow.fingerprint_table import Table, key_id

if TYPE_CHECKING:
    from connector.flow.offsets import TopicPartitionKey

__all__ = [
    "OPEN",
    "RESET",
    "SEAL",
    "Receipt",
    "Replay",
    "fingerprint_value",
    "marker_key",
    "marker_value",
    "seal_value",
    "topic_of",
]

OPEN: Final = b"O"
RESET: Final = b"R"
SEAL: Final = b"S"
_WORD = 8  # bytes of a fingerprint, a tenure, an offset


def marker_key(marker: bytes, topic: str) -> bytes:
    """The state record key of ``topic``'s ``marker`` (:data:`OPEN`, :data:`RESET`,
    :data:`SEAL`)."""
    return b"\x00" + marker + topic.encode()


def fingerprint_value(fingerprint: int, tenure: int) -> bytes:
    """A fingerprint record's value."""
    return fingerprint.to_bytes(_WORD, "big") + tenure.to_bytes(_WORD, "big")


def marker_value(tenure: int) -> bytes:
    """An open or reset marker's value."""
    return tenure.to_bytes(_WORD, "big")


def seal_value(tenure: int, read_to: int) -> bytes:
    """A seal's value: its owner's tenure and the offset it read back to (-1: none)."""
    return tenure.to_bytes(_WORD, "big") + read_to.to_bytes(_WORD, "big", signed=True)


def topic_of(key: bytes) -> tuple[str, bytes | None] | None:
    """The source topic a state record key belongs to and its marker (``None``: a fingerprint);
    ``None`` for a key of no shape known here."""
    try:
        if key[:1] == b"\x00":
            return (key[2:].decode(), key[1:2]) if len(key) > 2 else None  # noqa: PLR2004
        cut = key.find(b"\x00")
        return (key[:cut].decode(), None) if cut > 0 else None
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True, slots=True)
class Receipt:
    """What became of one state record written for partition ``tp``: ``written`` (acknowledged)
    or not (refused by the producer, or its delivery failed); ``gone`` when the state topic has
    no such partition."""

    tp: TopicPartitionKey
    marker: bytes | None  # None: a fingerprint or its tombstone
    written: bool
    gone: bool = False


class Replay:
    """One source partition's state records, read back in offset order."""

    __slots__ = ("_last", "_seal", "_writers", "complete", "high", "table")

    def __init__(self) -> None:
        self.table = Table()  # the fingerprints after the latest reset
        self.high = -1  # the highest offset of the topic's records read
        self.complete = False  # the read reached the end of the partition
        self._last = -1  # the latest record's offset, seals aside
        self._seal: tuple[int, int, int] | None = None  # latest seal: tenure, read to, offset
        self._writers: dict[int, int] = {}  # tenure → its latest record after the latest reset

    @property
    def trusted(self) -> bool:
        """Whether :attr:`table` holds only what LeadSquared was last sent (see the module)."""
        if not self.complete or self._last < 0:
            return self.complete
        if self._seal is None or self._seal[2] < self._last:
            return False
        tenure, read_to, _ = self._seal
        return all(at <= read_to for who, at in self._writers.items() if who != tenure)

    @property
    def kept(self) -> bool:
        """Whether fingerprints of the topic may be read back from this partition, now or by a
        later owner (the table is not empty, or the read did not finish)."""
        return len(self.table) > 0 or not self.complete

    def add(self, offset: int, key: bytes, marker: bytes | None, value: bytes | None) -> None:
        """The next record (``marker`` as :func:`topic_of` tells)."""
        self.high = max(self.high, offset)
        if marker == SEAL and value is not None and len(value) == 2 * _WORD:
            tenure, read_to = _word(value, 0), _word(value, 1, signed=True)
            self._seal = (tenure, read_to, offset)
            return
        self._last = offset
        if marker is None and value is None:  # a tombstone: one fingerprint fewer, whoever wrote
            self.table.delete(key_id(key))
            return
        if marker == RESET:
            self.table, self._writers = Table(), {}
        writer = -1  # a value of no known shape: nobody's, so never covered by a seal
        if marker is None and value is not None and len(value) in {_WORD, 2 * _WORD}:
            writer = _word(value, 1) if len(value) > _WORD else 0
            self.table.put(key_id(key), _word(value, 0))
        elif marker in {OPEN, RESET} and value is not None and len(value) == _WORD:
            writer = _word(value, 0)
        elif marker is None:
            self.table.delete(key_id(key))
        self._writers[writer] = offset


def _word(value: bytes, index: int, *, signed: bool = False) -> int:
    return int.from_bytes(value[index * _WORD : (index + 1) * _WORD], "big", signed=signed)
