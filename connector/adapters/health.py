"""[I/O] The health port (SPEC §8): ``/metrics`` (Prometheus), ``/livez`` (the loop is turning) and
``/readyz`` (in the group, outcomes acknowledged, keys accepted), served from a daemon thread that
only reads what the loop last published."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from connector.adapters.metrics import SnapshotCollector

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.flow.observe import Snapshot

__all__ = ["HealthServer", "Observed"]


class Observed(Protocol):
    """What the loop publishes (see :class:`connector.pipeline.Pipeline`)."""

    @property
    def snapshot(self) -> Snapshot: ...
    @property
    def last_turn(self) -> float: ...


class HealthServer:
    """An HTTP server on ``host:port`` (port 0: any free port, see :attr:`port`)."""

    def __init__(
        self,
        host: str,
        port: int,
        observed: Observed,
        liveness_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(SnapshotCollector(lambda: observed.snapshot))

        def livez() -> tuple[int, str]:
            stalled = clock() - observed.last_turn
            if stalled > liveness_timeout:
                return 503, f"the loop has not turned for {stalled:.0f} s\n"
            return 200, "ok\n"

        def readyz() -> tuple[int, str]:
            reasons = observed.snapshot.not_ready
            return (503, "".join(f"{r}\n" for r in reasons)) if reasons else (200, "ready\n")

        routes: dict[str, Callable[[], tuple[int, str]]] = {"/livez": livez, "/readyz": readyz}
        self._server = ThreadingHTTPServer((host, port), _handler(routes, registry))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="lsq-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _handler(
    routes: dict[str, Callable[[], tuple[int, str]]], registry: CollectorRegistry
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in routes:
                status, text = routes[path]()
                self._answer(status, text.encode(), "text/plain; charset=utf-8")
            else:
                self._answer(404, b"not found: try /metrics, /livez or /readyz\n", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            """Probes and scrapes are not worth a log line each."""

    return Handler
