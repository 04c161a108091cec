"""The shared test-server runner serves an app on 127.0.0.1 and stops cleanly."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from lsq_stack.serve import ServerThread


async def _hello(_: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


def _app() -> web.Application:
    app = web.Application()
    app.router.add_get("/hello", _hello)
    return app


def test_server_thread_serves_on_loopback_and_stops() -> None:
    """A started server answers on 127.0.0.1; after stop, connections are refused."""
    with ServerThread(_app()) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{server.url}/hello").json() == {"hello": "world"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/hello", timeout=2)
