"""Run ``lsq-sink run`` as a real process for the demo, the end-to-end tests and the benchmarks:
write its configuration, capture its JSON log lines, wait on conditions, stop it by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, Self

import yaml

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from types import TracebackType

__all__ = ["SinkProcess"]


class SinkProcess:
    """One ``lsq-sink run`` process; a context manager that stops it (SIGTERM) on exit."""

    def __init__(
        self,
        config: Mapping[str, Any],
        workdir: Path,
        env: Mapping[str, str] | None = None,
        name: str = "lsq-sink",
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / f"{name}.yaml"
        self.log_path = workdir / f"{name}.log"
        self.config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("LSQ_SINK_")}
        self._env |= dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        return self._process().pid

    def start(self) -> Self:
        """Start the process (its stdout and stderr go to ``log_path``)."""
        with self.log_path.open("ab") as log:
            command = [sys.executable, "-m", "connector", "run", "--config", str(self.config_path)]
            self._proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self._env
            )
        return self

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait for a graceful exit (SIGKILL after ``timeout``); the exit code."""
        proc = self._process()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit on its own; its exit code."""
        return self._process().wait(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to finish anything."""
        proc = self._process()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log lines written so far (only event ``name`` if given)."""
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{") and '"event"' in line:
                event = json.loads(line)
                if name is None or event.get("event") == name:
                    out.append(event)
        return out

    def summary(self) -> dict[str, int] | None:
        """The final summary line (``{"consumed": ...}``), once the process has exited cleanly."""
        for line in reversed(self.log_path.read_text(encoding="utf-8").splitlines()):
            if line.startswith('{"consumed"'):
                parsed: dict[str, int] = json.loads(line)
                return parsed
        return None

    def wait_for(
        self, condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2
    ) -> None:
        """Wait until ``condition()``; fail with the log tail if the process dies or time is up."""
        deadline = time.monotonic() + timeout
        while not condition():
            if not self.running():
                raise AssertionError(f"lsq-sink exited while waiting for {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}:\n{self.tail()}"
                )
            time.sleep(interval)

    def health_url(self, timeout: float = 60.0) -> str:
        """The base URL of the process's health port (its ``health.listening`` line says)."""
        self.wait_for(lambda: bool(self.events("health.listening")), timeout, "the health port")
        return f"http://127.0.0.1:{self.events('health.listening')[0]['port']}"

    def tail(self, lines: int = 30) -> str:
        """The last lines of the log, for failure messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError("SinkProcess.start() was not called")
        return self._proc

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self.stop()
