"""Send rendered calls to LeadSquared and bring back their answers (SPEC §3), on a small thread
pool so the pipeline's loop never blocks on HTTP. The only module that unwraps credentials: keys
go into the query string (async host, as documented) or headers (sync host) and never into
answers, errors or logs."""

from __future__ import annotations

import json
import queue
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx

from connector.logs import mask, secret_forms
from connector.records import Answer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from connector.records import Mode, Operation, Payload
    from connector.settings import AccountSettings

__all__ = ["ENDPOINTS", "Submitter", "endpoint"]

#: The path of each operation on the async host and on the regular (sync) API host.
ENDPOINTS: dict[tuple[Operation, Mode], str] = {
    ("capture", "async"): "/lead/capture",
    ("update", "async"): "/lead/update",
    ("lead_and_activity", "async"): "/activity/createcustom",
    ("capture", "sync"): "/v2/LeadManagement.svc/Lead.Capture",
    ("update", "sync"): "/v2/LeadManagement.svc/Lead.Update",
    ("lead_and_activity", "sync"): "/v2/ProspectActivity.svc/CreateCustom",
    ("create", "sync"): "/v2/LeadManagement.svc/Lead.Create",
}


def endpoint(operation: Operation, mode: Mode) -> str:
    """The API path for ``operation`` in ``mode``."""
    return ENDPOINTS[(operation, mode)]


class _Account:
    """One account's HTTP side: a pooled connection transport shared by its two hosts, and the
    credentials. Calls go straight to httpx's transport: LeadSquared needs none of the Client
    layer (redirects, cookies, auth flows), which costs more CPU than everything else per call."""

    def __init__(self, settings: AccountSettings) -> None:
        access, secret = (
            settings.access_key.get_secret_value(),
            settings.secret_key.get_secret_value(),
        )
        api_key = settings.api_key.get_secret_value() if settings.api_key else ""
        self._forms = secret_forms((access, secret, api_key))
        concurrency = settings.max_concurrency
        self._transport = httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        )
        self._timeout = httpx.Timeout(
            settings.request_timeout_seconds, connect=settings.connect_timeout_seconds
        ).as_dict()
        json_type = ("content-type", "application/json")
        self._targets: dict[
            Mode, tuple[str, tuple[tuple[str, str], ...], list[tuple[str, str]]]
        ] = {
            "async": (
                str(settings.async_host).rstrip("/"),
                (("accessKey", access), ("secretKey", secret)),
                [("x-api-key", api_key), json_type],
            ),
            "sync": (
                str(settings.api_host).rstrip("/"),
                (),
                [("x-LSQ-AccessKey", access), ("x-LSQ-SecretKey", secret), json_type],
            ),
        }

    def call(self, mode: Mode, payload: Payload) -> Answer:
        host, keys, headers = self._targets[mode]
        url = httpx.URL(host + endpoint(payload.operation, mode), params=keys + payload.params)
        body = json.dumps(payload.body, separators=(",", ":"), ensure_ascii=False).encode()
        request = httpx.Request(
            "POST", url, headers=headers, content=body, extensions={"timeout": self._timeout}
        )
        try:
            response = self._transport.handle_request(request)
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


class Submitter:
    """Runs calls on worker threads; :meth:`collect` returns the answers as they come."""

    def __init__(self, accounts: Mapping[str, AccountSettings]) -> None:
        self._accounts = {name: _Account(settings) for name, settings in accounts.items()}
        self._pools = {
            name: ThreadPoolExecutor(settings.max_concurrency, thread_name_prefix=f"lsq-{name}")
            for name, settings in accounts.items()
        }
        self._answers: queue.SimpleQueue[tuple[int, Answer]] = queue.SimpleQueue()
        self.in_flight = 0

    def submit(self, ticket: int, account: str, mode: Mode, payload: Payload) -> None:
        """Start the call; its answer arrives through :meth:`collect` tagged with ``ticket``."""
        self.in_flight += 1
        self._pools[account].submit(self._run, ticket, self._accounts[account], mode, payload)

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
        self.in_flight -= len(out)
        return out

    def close(self) -> None:
        """Stop the workers (calls still running finish in the background) and close clients."""
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        for account in self._accounts.values():
            account.close()

    def _run(self, ticket: int, account: _Account, mode: Mode, payload: Payload) -> None:
        try:
            answer = account.call(mode, payload)
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the answer: report it
            answer = Answer(None, error=f"internal error: {account.describe(exc)}")
        self._answers.put((ticket, answer))
