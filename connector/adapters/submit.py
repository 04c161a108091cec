"""[I/O] Send requests to LeadSquared and bring back their answers (SPEC §3), on a few worker
threads per account so the pipeline's loop never blocks on HTTP. The only module that unwraps
credentials: keys go into the query string (async host, as documented) or headers (sync host) and
never into answers, errors or logs."""

from __future__ import annotations

import json
import queue
import threading
from typing import TYPE_CHECKING

import httpx

from connector.logs import mask, secret_forms
from connector.records import Answer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from connector.lsq.catalog import Host, Request
    from connector.settings.model import AccountSettings

__all__ = ["Submitter", "pooled_transport"]


def pooled_transport(settings: AccountSettings) -> httpx.BaseTransport:
    """An account's connection pool: as many connections as calls it may have in flight."""
    concurrency = settings.max_concurrency
    return httpx.HTTPTransport(
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    )


class _Account:
    """One account's HTTP side: a pooled connection transport shared by its two hosts, and the
    credentials. Calls go straight to httpx's transport: LeadSquared needs none of the Client
    layer (redirects, cookies, auth flows), which costs more CPU than everything else per call."""

    def __init__(self, settings: AccountSettings, transport: httpx.BaseTransport) -> None:
        access, secret = (
            settings.access_key.get_secret_value(),
            settings.secret_key.get_secret_value(),
        )
        api_key = settings.api_key.get_secret_value() if settings.api_key else ""
        self._forms = secret_forms((access, secret, api_key))
        self._transport = transport
        self._timeout = httpx.Timeout(
            settings.request_timeout_seconds, connect=settings.connect_timeout_seconds
        ).as_dict()
        self._targets: dict[
            Host, tuple[str, tuple[tuple[str, str], ...], list[tuple[str, str]]]
        ] = {
            "async": (
                str(settings.async_host).rstrip("/"),
                (("accessKey", access), ("secretKey", secret)),
                [("x-api-key", api_key)],
            ),
            "status": (str(settings.async_host).rstrip("/"), (), [("x-api-key", api_key)]),
            "api": (
                str(settings.api_host).rstrip("/"),
                (),
                [("x-LSQ-AccessKey", access), ("x-LSQ-SecretKey", secret)],
            ),
        }

    def call(self, request: Request) -> Answer:
        target = request.endpoint
        host, keys, headers = self._targets[target.host]
        url = httpx.URL(host + target.path, params=keys + request.params)
        headers = [*headers, *request.headers]
        body = None
        if request.body is not None:
            body = json.dumps(request.body, separators=(",", ":"), ensure_ascii=False).encode()
            headers.append(("content-type", "application/json"))
        http = httpx.Request(
            target.method,
            url,
            headers=headers,
            content=body,
            extensions={"timeout": self._timeout},
        )
        try:
            response = self._transport.handle_request(http)
            try:
                content = response.read()
            finally:
                response.close()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return Answer(None, error=self.describe(exc), maybe_sent=False)
        except httpx.HTTPError as exc:  # timeouts while waiting, dropped connections: maybe sent
            return Answer(None, error=self.describe(exc), maybe_sent=True)
        return Answer(response.status_code, self._scrub(content))

    def describe(self, exc: Exception) -> str:
        """An error's text, keys masked."""
        return mask(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, self._forms)

    def _scrub(self, body: bytes) -> bytes:
        """The answer body with our keys masked: LeadSquared's error text may quote the request,
        and answers end up in dead-letter headers and logs."""
        for form in self._forms:
            if form.encode() in body:
                body = body.replace(form.encode(), b"***")
        return body

    def close(self) -> None:
        self._transport.close()


class _Workers:
    """One account's worker threads, started as calls need them up to its concurrency. They are
    daemon threads: a call still hanging when the connector stops must not hold the process past
    its shutdown grace (a thread pool's workers are joined at exit)."""

    def __init__(self, name: str, size: int) -> None:
        self._name, self._size = name, size
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)
        if len(self._threads) < self._size:
            thread = threading.Thread(
                target=self._work, name=f"lsq-{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def close(self) -> None:
        """Calls not yet started are dropped; running ones finish in the background."""
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None and not self._closed:
            job()


class Submitter:
    """Runs calls on worker threads; :meth:`collect` returns the answers as they come.
    ``transport`` makes each account's HTTP transport (tests inject ``httpx.MockTransport``)."""

    def __init__(
        self,
        accounts: Mapping[str, AccountSettings],
        transport: Callable[[AccountSettings], httpx.BaseTransport] = pooled_transport,
    ) -> None:
        self._accounts = {
            name: _Account(settings, transport(settings)) for name, settings in accounts.items()
        }
        self._workers = {
            name: _Workers(name, settings.max_concurrency) for name, settings in accounts.items()
        }
        self._answers: queue.SimpleQueue[tuple[int, Answer]] = queue.SimpleQueue()

    def submit(self, ticket: int, account: str, request: Request) -> None:
        """Start the call; its answer arrives through :meth:`collect` tagged with ``ticket``."""
        client = self._accounts[account]
        self._workers[account].submit(lambda: self._run(ticket, client, request))

    def collect(self, timeout: float) -> list[tuple[int, Answer]]:
        """Answers that arrived, waiting up to ``timeout`` seconds for the first one."""
        out: list[tuple[int, Answer]] = []
        try:
            out.append(
                self._answers.get(timeout=timeout) if timeout > 0 else self._answers.get_nowait()
            )
            while True:
                out.append(self._answers.get_nowait())
        except queue.Empty:
            pass
        return out

    def close(self) -> None:
        """Stop the workers (calls still running finish in the background) and close clients."""
        for workers in self._workers.values():
            workers.close()
        for account in self._accounts.values():
            account.close()

    def _run(self, ticket: int, account: _Account, request: Request) -> None:
        try:
            answer = account.call(request)
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the answer: report it
            answer = Answer(None, error=f"internal error: {account.describe(exc)}")
        self._answers.put((ticket, answer))
