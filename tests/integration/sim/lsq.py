"""A thin LeadSquared client for the contract tests: builds the documented requests for one
account (query keys, x-api-key, JSON body) and nothing more, so the tests see what is sent."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Protocol

import httpx

if TYPE_CHECKING:
    from lsq_sim import Account, Simulator

JSON_TYPE = "application/json"
ACCEPTED = "Request accepted. Please use below request id to check the status"
DONE = ("Success", "FAILURE", "ERROR")

#: The request bodies of the seed pages.
CAPTURE_BODY = [
    {"Attribute": "FirstName", "Value": "Bret"},
    {"Attribute": "LastName", "Value": "Lee"},
    {"Attribute": "EmailAddress", "Value": "bret.lee@australia.com"},
    {"Attribute": "Phone", "Value": "8888888888"},
    {"Attribute": "SearchBy", "Value": "Phone"},
]
UPDATE_BODY = [
    {"Attribute": "Phone", "Value": "9999999999"},
    {"Attribute": "mx_City", "Value": "London"},
]
CREATE_CUSTOM_BODY: dict[str, Any] = {
    "LeadDetails": [
        {"Attribute": "EmailAddress", "Value": "email@example.com"},
        {"Attribute": "mx_City", "Value": "Bangalore"},
        {
            "Attribute": "mx_KYC",
            "Value": "",
            "Fields": [
                {"Attribute": "Status", "Value": "Pending"},
                {"Attribute": "mx_CustomObject_1", "Value": "XYZ12345.png"},
            ],
        },
        {"Attribute": "SearchBy", "Value": "EmailAddress"},
    ],
    "Activity": {
        "ActivityEvent": 105,
        "ActivityNote": "Note for the activity",
        "ActivityDateTime": "2016-07-07 10:55:00",
        "Fields": [{"SchemaName": "mx_Custom_1", "Value": "123"}],
    },
}


#: The bulk endpoints (reference/leadsquared-api.md §2.8).
BULK_LEADS = "/v2/LeadManagement.svc/Lead/Bulk/CreateOrUpdate"
BULK_ACTIVITIES = "/v2/ProspectActivity.svc/Bulk/CustomActivity/Add/ByLeadField"


def lead_row(email: str, **more: str) -> list[dict[str, str]]:
    """One Attribute/Value row (a Lead.Capture body) with EmailAddress and ``more`` fields."""
    fields = {"EmailAddress": email, **more}
    return [{"Attribute": name, "Value": value} for name, value in fields.items()]


def activity_body(lead_id: str, event: int = 201) -> dict[str, Any]:
    """A ProspectActivity.svc/Create body."""
    return {
        "RelatedProspectId": lead_id,
        "ActivityEvent": event,
        "ActivityNote": "called",
        "ActivityDateTime": "2015-10-11 12:13:44",
        "Fields": [{"SchemaName": "mx_Custom_1", "Value": "x"}],
    }


class StartSim(Protocol):
    """Starts a simulator with config overrides; stopped at teardown."""

    def __call__(self, **overrides: Any) -> tuple[Simulator, Api]: ...


class Api:
    """Documented calls for one account; every argument can be bent to test rejections."""

    def __init__(self, url: str, account: Account) -> None:
        self.account = account
        self.http = httpx.Client(base_url=url, timeout=10.0)

    def keys(self) -> dict[str, str]:
        """accessKey and secretKey query parameters."""
        return {"accessKey": self.account.access_key, "secretKey": self.account.secret_key}

    def submit(
        self,
        path: str,
        body: object,
        *,
        params: dict[str, str] | None = None,
        api_key: str | None = "",
        keys: dict[str, str] | None = None,
        content_type: str = JSON_TYPE,
        raw: bytes | None = None,
    ) -> httpx.Response:
        """POST to the async host: keys in the query, x-api-key header (``None``: omitted;
        ``""``: the account's)."""
        headers = {"content-type": content_type}
        if api_key is not None:
            headers["x-api-key"] = api_key or self.account.api_key
        query = {**(self.keys() if keys is None else keys), **(params or {})}
        content = json.dumps(body).encode() if raw is None else raw
        return self.http.post(path, params=query, headers=headers, content=content)

    def sync(
        self, path: str, body: object, *, params: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST to the regular API host (/v2/...) with the keys in the query."""
        return self.http.post(
            path,
            params={**self.keys(), **(params or {})},
            headers={"content-type": JSON_TYPE},
            content=json.dumps(body).encode(),
        )

    def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        """GET a status or metrics route with the account's x-api-key only."""
        return self.http.get(path, params=params, headers={"x-api-key": self.account.api_key})

    def accepted_id(self, response: httpx.Response) -> str:
        """The RequestID of an accepted submission (asserts it was accepted)."""
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["Status"] == ACCEPTED
        return str(body["RequestID"])

    def wait_status(
        self, request_id: str, path: str = "/lead/status", timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll the Status API until the task is done."""
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = self.get(path, {"RequestID": request_id}).json()
            if body["TaskStatus"]["Status"] in DONE or time.monotonic() > deadline:
                return body
            time.sleep(0.02)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()
