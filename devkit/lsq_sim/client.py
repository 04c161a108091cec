"""[I/O] ``SimClient``: an httpx client for the ``/_sim`` endpoints, the one way to inspect and
control a simulator, whether it runs in this process or in another."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from lsq_sim.config import Account, FaultRule, Faults, OutageMode, SimConfig
from lsq_sim.views import (
    KeyRotation,
    LoggedRequest,
    OutageRequest,
    RequestPage,
    Stats,
    StoreView,
    TaskList,
    Visitors,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType

__all__ = ["SimClient", "SimClientError"]

_M = TypeVar("_M", bound=BaseModel)


class SimClientError(RuntimeError):
    """The simulator answered a ``/_sim`` call with an error."""


class SimClient:
    """Typed access to a simulator's inspection and control endpoints at ``url``."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.url}/_sim", timeout=timeout)

    # -- inspection ------------------------------------------------------------------------

    def health(self) -> bool:
        """Whether the simulator answers."""
        try:
            return self._http.get("/health").status_code == httpx.codes.OK
        except httpx.TransportError:
            return False

    def config(self) -> SimConfig:
        """The configuration in force (current keys and fault settings)."""
        return self._get("/config", SimConfig)

    def account(self, name: str | None = None) -> Account:
        """An account's current keys (the first account by default)."""
        accounts = self.config().accounts
        return next(a for a in accounts if name in (None, a.name))

    def requests(self, since: int = 0, limit: int | None = None) -> tuple[LoggedRequest, ...]:
        """The API calls received after sequence number ``since``, oldest first."""
        return self.request_page(since, limit).requests

    def request_page(self, since: int = 0, limit: int | None = None) -> RequestPage:
        """Like ``requests``, plus the last sequence number (to poll with ``since``)."""
        params: dict[str, int] = {"since": since}
        if limit is not None:
            params["limit"] = limit
        return self._get("/requests", RequestPage, params)

    def store(self, account: str | None = None) -> StoreView:
        """An account's leads and activities (the first account by default)."""
        params = {} if account is None else {"account": account}
        return self._get("/store", StoreView, params)

    def tasks(self, status: str | None = None, account: str | None = None) -> list[dict[str, Any]]:
        """An account's kept status records (the first account's by default), oldest submission
        first; only those whose status is ``status`` (In-Queue, Success, FAILURE or ERROR) when
        given. Each is ``{"request_id", "status", "reason", "exception_type", "operation"}``."""
        given = {"status": status, "account": account}
        params = {name: value for name, value in given.items() if value is not None}
        page = self._get("/tasks", TaskList, params)
        return [task.model_dump(mode="json") for task in page.tasks]

    def stats(self) -> Stats:
        """Counters per account."""
        return self._get("/stats", Stats)

    def faults(self) -> Faults:
        """The fault settings in force (each rule's ``times`` is what is left)."""
        return self._get("/faults", Faults)

    # -- control ---------------------------------------------------------------------------

    def set_faults(
        self,
        *rules: FaultRule,
        error_rate: float = 0.0,
        drop_rate: float = 0.0,
        latency_ms: float = 0.0,
        latency_jitter_ms: float = 0.0,
    ) -> Faults:
        """Replace every fault setting."""
        faults = Faults(
            rules=rules,
            error_rate=error_rate,
            drop_rate=drop_rate,
            latency_ms=latency_ms,
            latency_jitter_ms=latency_jitter_ms,
        )
        return self._send("PUT", "/faults", Faults, faults)

    def clear_faults(self) -> None:
        """Remove every fault rule and rate."""
        self._check(self._http.delete("/faults"))

    def outage(
        self, duration_s: float, mode: OutageMode = "http503", start_in_s: float = 0.0
    ) -> None:
        """An outage of ``duration_s`` seconds starting ``start_in_s`` from now. During a
        ``refuse`` outage the port is closed, so ``/_sim`` is unreachable too."""
        request = OutageRequest(duration_s=duration_s, mode=mode, start_in_s=start_in_s)
        self._check(self._http.post("/outages", content=request.model_dump_json()))

    def rotate_keys(
        self,
        account: str,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        api_key: str | None = None,
    ) -> Account:
        """Replace some of ``account``'s keys; the old ones are rejected from now on."""
        rotation = KeyRotation(access_key=access_key, secret_key=secret_key, api_key=api_key)
        return self._send("POST", f"/accounts/{account}/keys", Account, rotation)

    def register_visitors(self, account: str, *ids: str) -> None:
        """Register anonymous web visitor ids (MXCProspectId) for Lead.Capture."""
        body = Visitors(ids=ids).model_dump_json()
        self._check(self._http.post(f"/accounts/{account}/visitors", content=body))

    def add_leads(self, account: str, leads: Sequence[Mapping[str, str]]) -> tuple[str, ...]:
        """Create leads (attribute name → value each) directly in ``account``'s store, as
        Lead.Create would, without an API call: no budget used, nothing logged. Their ids."""
        body = [dict(lead) for lead in leads]
        response = self._check(self._http.post(f"/accounts/{account}/leads", json=body))
        return tuple(str(lead_id) for lead_id in response.json()["leads"])

    def reset(self) -> None:
        """Clear the request log, stores, work queues and counters."""
        self._check(self._http.post("/reset"))

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until every work queue is empty; TimeoutError after ``timeout`` seconds."""
        response = self._http.post("/queue/wait", params={"timeout": timeout}, timeout=timeout + 10)
        if response.status_code == httpx.codes.REQUEST_TIMEOUT:
            raise TimeoutError(f"work queue not empty after {timeout} s: {response.json()}")
        self._check(response)

    # -- plumbing --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _get(
        self, path: str, model: type[_M], params: dict[str, str] | dict[str, int] | None = None
    ) -> _M:
        response = self._check(self._http.get(path, params=params))
        return model.model_validate_json(response.content)

    def _send(self, method: str, path: str, model: type[_M], body: BaseModel) -> _M:
        response = self._http.request(method, path, content=body.model_dump_json())
        return model.model_validate_json(self._check(response).content)

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.is_error:
            raise SimClientError(
                f"simulator answered {response.status_code} to {response.request.method} "
                f"{response.request.url.path}: {response.text}"
            )
        return response
