"""Run a simulator: in this process on a ``ServerThread`` (``Simulator``), or as a separate
``lsq-sim`` process (``SimProcess``). Both expose ``.url`` and a ``SimClient`` as ``.client``."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Self

from lsq_sim.app import build_app
from lsq_sim.client import SimClient
from lsq_sim.config import Account, SimConfig
from lsq_stack.serve import ServerThread

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

__all__ = ["SimProcess", "Simulator"]

_ANNOUNCE_RE = re.compile(r"lsq-sim listening on (http://\S+)")


class _Running:
    """What both runners share: config, url, client, context management."""

    def __init__(self, config: SimConfig | None) -> None:
        self.config = config or SimConfig()
        self._url: str | None = None
        self._client: SimClient | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        if self._url is None:
            raise RuntimeError("simulator not started")
        return self._url

    @property
    def client(self) -> SimClient:
        """A ``SimClient`` for this simulator."""
        if self._client is None:
            self._client = SimClient(self.url)
        return self._client

    def account(self, name: str | None = None) -> Account:
        """A configured account (the first by default), with its initial keys."""
        return next(a for a in self.config.accounts if name in (None, a.name))

    def start(self) -> str:
        """Start; return the base URL."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Simulator(_Running):
    """A simulator in this process, on a background thread with its own event loop."""

    def __init__(self, config: SimConfig | None = None) -> None:
        super().__init__(config)
        self._server: ServerThread | None = None

    def start(self) -> str:
        self._server = ServerThread(build_app(self.config), self.config.host, self.config.port)
        self._url = self._server.start()
        return self._url

    def stop(self) -> None:
        super().stop()
        if self._server is not None:
            self._server.stop()
            self._server = None


class SimProcess(_Running):
    """``lsq-sim --config FILE`` as a child process, stopped by PID (SIGTERM, then wait)."""

    def __init__(
        self,
        config: SimConfig | None = None,
        args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        """``args`` are extra ``lsq-sim`` options; they override ``config``."""
        super().__init__(config)
        self._args = tuple(args)
        self._timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._exit_code: int | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self._process is None:
            raise RuntimeError("simulator not started")
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit code, once it has exited."""
        return self._exit_code if self._process is None else self._process.poll()

    def start(self) -> str:
        self._dir = tempfile.TemporaryDirectory(prefix="lsq-sim-")
        config_file = Path(self._dir.name) / "config.json"
        config_file.write_text(self.config.model_dump_json(), encoding="utf-8")
        stderr = (Path(self._dir.name) / "stderr.log").open("wb")
        with stderr:
            self._process = subprocess.Popen(
                [*_command(), "--config", str(config_file), *self._args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
            )
        try:
            self._url = self._await_announce()
        except BaseException:
            self.stop()
            raise
        return self._url

    def _await_announce(self) -> str:
        if self._process is None or self._process.stdout is None:
            raise RuntimeError("simulator not started")
        try:
            line = _read_line(self._process.stdout, self._timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; {self._stderr()}") from None
        found = _ANNOUNCE_RE.fullmatch(line.strip())
        if found is None:
            raise RuntimeError(f"lsq-sim did not announce its URL: {line!r}; {self._stderr()}")
        return found.group(1)

    def _stderr(self) -> str:
        if self._dir is None:
            return ""
        path = Path(self._dir.name) / "stderr.log"
        return f"stderr: {path.read_text(errors='replace')[-2000:]!r}" if path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the child, wait for it (SIGKILL after ``timeout`` s), clean up."""
        super().stop()
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout)
            if process.stdout is not None:
                process.stdout.close()
            self._exit_code = process.returncode
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def _command() -> list[str]:
    """``lsq-sim`` from this interpreter's environment, else ``python -m``."""
    script = Path(sys.executable).with_name("lsq-sim")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "lsq_sim"]


def _read_line(stream: IO[bytes], timeout: float) -> str:
    """The first line written to ``stream``, waiting at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise TimeoutError(f"lsq-sim did not start within {timeout} s")
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break  # the child exited
            data += chunk
    return data.decode(errors="replace")
