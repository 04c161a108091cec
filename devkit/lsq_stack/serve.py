"""Serve an aiohttp application on 127.0.0.1: in a background thread (tests) or in the foreground
(command line), with the same code path, so both behave alike."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from typing import TYPE_CHECKING, Self

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["RUNNER", "ServerThread", "run_foreground", "serve"]

#: The application's runner, so handlers can stop and restart listening (refused-connection faults).
RUNNER = web.AppKey("runner", web.AppRunner)


async def serve(
    app: web.Application, host: str, port: int, ready: Callable[[str], None], stop: asyncio.Event
) -> None:
    """Listen on host:port (0 = a free port), call ``ready(url)``, run until ``stop`` is set."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    app[RUNNER] = runner
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        ready(f"http://{bound_host}:{bound_port}")
        await stop.wait()
    finally:
        await runner.cleanup()


def run_foreground(
    app: web.Application, host: str, port: int, announce: Callable[[str], None]
) -> None:
    """Serve until SIGINT or SIGTERM (command-line use)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(app, host, port, announce, stop)

    asyncio.run(main())


class ServerThread:
    """Runs an application in a daemon thread with its own event loop; a context manager."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app, self._host, self._port = app, host, port
        self._ready = threading.Event()
        self._url = ""
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="test-server", daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return self._url

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The server's event loop (for ``asyncio.run_coroutine_threadsafe``)."""
        if self._loop is None:
            raise RuntimeError("server not started")
        return self._loop

    def start(self, timeout: float = 10.0) -> str:
        """Start listening; return the base URL once the server accepts connections."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"test server did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"test server failed to start: {self._error}") from self._error
        return self._url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening and join the thread."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self._app, self._host, self._port, self._on_ready, self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()

    def _on_ready(self, url: str) -> None:
        self._url = url
        self._ready.set()
