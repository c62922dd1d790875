"""lab/api/app.py: how the store's failures answer, and /health.

The memory store cannot become unreachable, so the PostgreSQL-is-down case is
played by a store whose every call raises ``StoreUnavailable`` -- the one
failure here that cannot be made real until challenge 3 brings a server.
"""

from __future__ import annotations

import aiohttp

from lab.api.app import build_app
from lab.api.memory import MemoryStore
from lab.api.store import StoreUnavailable
from lab.http.app import serve
from tests.api.conftest import FAST_HASHER


class UnreachableStore(MemoryStore):
    name = "unreachable"

    async def check(self) -> None:
        raise StoreUnavailable("connection refused")

    async def get_task(self, task_id):
        raise StoreUnavailable("connection refused")


async def test_an_unreachable_store_is_a_503_with_a_message():
    app = build_app(UnreachableStore(), hasher=FAST_HASHER)
    async with serve(app) as (host, port), aiohttp.ClientSession(f"http://{host}:{port}") as c:
        for path in ("/health", "/tasks/1"):
            async with c.get(path) as answer:
                assert answer.status == 503
                assert await answer.json() == {
                    "message": "The database is unavailable; try again shortly"}


async def test_health_names_the_store(api):
    assert await api.call("GET", "/health") == (200, {"status": "ok", "store": api.store.name})


async def test_the_routes_are_the_contracts():
    app = build_app(MemoryStore(), hasher=FAST_HASHER)
    declared = {(r.method, r.path) for r in app.routes()}
    for resource in ("users", "categories", "tasks"):
        assert {("GET", f"/{resource}"), ("POST", f"/{resource}"),
                ("GET", f"/{resource}/{{id:int}}"), ("PUT", f"/{resource}/{{id:int}}"),
                ("DELETE", f"/{resource}/{{id:int}}")} <= declared
    assert {("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/api-docs")} <= declared
