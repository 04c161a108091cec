"""librdkafka's mock Kafka cluster (built into the librdkafka that confluent-kafka loads), driven
through ctypes, for broker fault injection in tests: topic errors, request errors, brokers down.

The cluster runs on librdkafka's own threads inside this process and listens on 127.0.0.1, so other
processes (``lsq-sink run``) reach it over TCP. What it does not do (librdkafka 2.16): CreateTopics
and DeleteTopics (create topics with :meth:`MockCluster.create_topic`, before producing),
DescribeGroups/ListGroups, ``offsets_for_times`` (answers -1), transactional offsets; each partition
keeps only about 5 MiB and silently drops older records. Use Tansu for anything else.

How the cluster is made: ``rd_kafka_mock_cluster_new`` needs an ``rd_kafka_t`` handle for its
bookkeeping. confluent-kafka does not expose the handle of its clients, so a bare producer handle
(no bootstrap servers, it never connects) is created through ctypes with ``rd_kafka_new``; it lives
as long as the cluster, and both are destroyed by :meth:`MockCluster.close`.

Which library: the symbols are looked up through confluent-kafka's extension module, whose
dependencies include the librdkafka it is linked against (``dlsym`` searches them), so the cluster
comes from the very copy confluent-kafka uses, bundled (``confluent_kafka.libs/``) or system-wide.
Where that lookup cannot work (Windows does not search dependencies), the bundled file next to the
package, then the system's ``librdkafka``, are tried.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import functools
import importlib.util
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Self

from confluent_kafka import KafkaError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

__all__ = ["ApiKey", "MockCluster", "MockClusterError", "load_librdkafka"]

_RD_KAFKA_PRODUCER = 0
_RD_KAFKA_CONF_OK = 0
_ERRSTR_SIZE = 512
_VOID_P, _CHAR_P, _INT, _INT16, _INT32 = (
    ctypes.c_void_p,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_int16,
    ctypes.c_int32,
)
#: (name, return type, argument types) of every C function used, as declared in rdkafka.h and
#: rdkafka_mock.h (``rd_kafka_resp_err_t`` and ``rd_kafka_conf_res_t`` are C enums: int).
_SIGNATURES: tuple[tuple[str, type | None, tuple[type, ...]], ...] = (
    ("rd_kafka_conf_new", _VOID_P, ()),
    ("rd_kafka_conf_set", _INT, (_VOID_P, _CHAR_P, _CHAR_P, _CHAR_P, ctypes.c_size_t)),
    ("rd_kafka_conf_destroy", None, (_VOID_P,)),
    ("rd_kafka_new", _VOID_P, (_INT, _VOID_P, _CHAR_P, ctypes.c_size_t)),
    ("rd_kafka_destroy", None, (_VOID_P,)),
    ("rd_kafka_mock_cluster_new", _VOID_P, (_VOID_P, _INT)),
    ("rd_kafka_mock_cluster_destroy", None, (_VOID_P,)),
    ("rd_kafka_mock_cluster_bootstraps", _CHAR_P, (_VOID_P,)),
    ("rd_kafka_mock_group_initial_rebalance_delay_ms", None, (_VOID_P, _INT32)),
    ("rd_kafka_mock_topic_create", _INT, (_VOID_P, _CHAR_P, _INT, _INT)),
    ("rd_kafka_mock_topic_set_error", None, (_VOID_P, _CHAR_P, _INT)),
    (
        "rd_kafka_mock_push_request_errors_array",
        None,
        (_VOID_P, _INT16, ctypes.c_size_t, ctypes.POINTER(_INT)),
    ),
    ("rd_kafka_mock_clear_request_errors", None, (_VOID_P, _INT16)),
    ("rd_kafka_mock_broker_set_down", _INT, (_VOID_P, _INT32)),
    ("rd_kafka_mock_broker_set_up", _INT, (_VOID_P, _INT32)),
)


class ApiKey(enum.IntEnum):
    """Kafka protocol request types, for :meth:`MockCluster.push_request_errors`."""

    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    SYNC_GROUP = 14
    INIT_PRODUCER_ID = 22


class MockClusterError(RuntimeError):
    """The mock cluster could not be loaded, created, or refused a command."""


def _candidates() -> list[str]:
    """Library files that may hold librdkafka, best first (see the module docstring)."""
    out = []
    extension = importlib.util.find_spec("confluent_kafka.cimpl")
    if extension is not None and extension.origin is not None:
        out.append(extension.origin)
        package = Path(extension.origin).parent
        for folder in (package.parent / "confluent_kafka.libs", package / ".dylibs", package):
            out += sorted(str(p) for p in folder.glob("*rdkafka*") if p.is_file())
    if (system := ctypes.util.find_library("rdkafka")) is not None:
        out.append(system)
    return out


@functools.cache
def load_librdkafka() -> ctypes.CDLL:
    """The librdkafka confluent-kafka uses, with the mock API's C signatures declared."""
    tried = []
    for candidate in _candidates():
        try:
            lib = ctypes.CDLL(candidate)
        except OSError as exc:
            tried.append(f"{candidate}: {exc}")
            continue
        if all(hasattr(lib, name) for name, _, _ in _SIGNATURES):
            for name, restype, argtypes in _SIGNATURES:
                function = getattr(lib, name)
                function.restype, function.argtypes = restype, list(argtypes)
            return lib
        tried.append(f"{candidate}: no librdkafka mock API")
    raise MockClusterError(
        "librdkafka's mock cluster API was not found; tried:\n  " + "\n  ".join(tried or ["none"])
    )


def _check(err: int, what: str) -> None:
    if err != 0:
        raise MockClusterError(f"{what}: {KafkaError(err).str()}")


def _destroy(lib: ctypes.CDLL, cluster: int, handle: int) -> None:
    """Free the cluster, then the handle it belongs to (joins librdkafka's threads)."""
    lib.rd_kafka_mock_cluster_destroy(cluster)
    lib.rd_kafka_destroy(handle)


def _new_handle(lib: ctypes.CDLL) -> int:
    """A bare producer handle: no bootstrap servers, only errors logged (to stderr)."""
    conf = lib.rd_kafka_conf_new()
    errstr = ctypes.create_string_buffer(_ERRSTR_SIZE)
    if lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, _ERRSTR_SIZE) != _RD_KAFKA_CONF_OK:
        lib.rd_kafka_conf_destroy(conf)
        raise MockClusterError(f"rd_kafka_conf_set(log_level): {errstr.value.decode()}")
    handle: int | None = lib.rd_kafka_new(_RD_KAFKA_PRODUCER, conf, errstr, _ERRSTR_SIZE)
    if not handle:
        lib.rd_kafka_conf_destroy(conf)  # rd_kafka_new takes the conf only when it succeeds
        raise MockClusterError(f"rd_kafka_new: {errstr.value.decode()}")
    return handle


class MockCluster:
    """A mock Kafka cluster of ``brokers`` brokers (ids 1..n) on 127.0.0.1; a context manager.

    Group joins complete at once (the initial rebalance delay is 0, not the broker's 3 s)."""

    def __init__(self, brokers: int = 1) -> None:
        if brokers < 1:
            raise ValueError(f"brokers must be at least 1, not {brokers}")
        self._lib = lib = load_librdkafka()
        handle = _new_handle(lib)
        cluster: int | None = lib.rd_kafka_mock_cluster_new(handle, brokers)
        if not cluster:
            lib.rd_kafka_destroy(handle)
            raise MockClusterError(f"rd_kafka_mock_cluster_new({brokers}) failed")
        self._cluster = cluster
        self._closed = weakref.finalize(self, _destroy, lib, cluster, handle)
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0)
        self.bootstrap_servers: str = lib.rd_kafka_mock_cluster_bootstraps(cluster).decode()
        self.brokers = brokers

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = 1) -> None:
        """Create ``name`` with exactly ``partitions`` partitions (no admin API on the mock)."""
        err = self._lib.rd_kafka_mock_topic_create(
            self._live(), name.encode(), partitions, replication_factor
        )
        _check(err, f"create topic {name!r}")

    def set_topic_error(self, topic: str, error: int) -> None:
        """Answer Metadata requests for ``topic`` with ``error`` (a ``KafkaError`` code), e.g.
        ``KafkaError.LEADER_NOT_AVAILABLE``: producers that have not learnt the topic's leaders
        yet hold its records (and retry) until it is cleared or they time out."""
        self._lib.rd_kafka_mock_topic_set_error(self._live(), topic.encode(), error)

    def clear_topic_error(self, topic: str) -> None:
        """Answer Metadata requests for ``topic`` normally again."""
        self.set_topic_error(topic, KafkaError.NO_ERROR)

    def push_request_errors(self, api_key: ApiKey | int, errors: Sequence[int]) -> None:
        """Fail the next ``len(errors)`` requests of type ``api_key`` (to any broker) with these
        error codes, in order; ``KafkaError._TRANSPORT`` disconnects the client instead."""
        codes = (ctypes.c_int * len(errors))(*errors)
        self._lib.rd_kafka_mock_push_request_errors_array(self._live(), api_key, len(errors), codes)

    def clear_request_errors(self, api_key: ApiKey | int) -> None:
        """Drop the errors still pushed for ``api_key``."""
        self._lib.rd_kafka_mock_clear_request_errors(self._live(), api_key)

    def broker_down(self, broker_id: int = -1) -> None:
        """Disconnect broker ``broker_id`` (-1: all) and refuse new connections to it."""
        _check(
            self._lib.rd_kafka_mock_broker_set_down(self._live(), broker_id),
            f"broker {broker_id} down",
        )

    def broker_up(self, broker_id: int = -1) -> None:
        """Let broker ``broker_id`` (-1: all) accept connections again."""
        _check(
            self._lib.rd_kafka_mock_broker_set_up(self._live(), broker_id),
            f"broker {broker_id} up",
        )

    def close(self) -> None:
        """Stop the cluster and free it (idempotent; clients still connected see it go away)."""
        self._closed()

    def _live(self) -> int:
        if not self._closed.alive:
            raise MockClusterError("the mock cluster is closed")
        return self._cluster

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
