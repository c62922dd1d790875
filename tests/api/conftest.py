"""The Task API served on a free port, on each store, with a client that returns (status, body).

Every HTTP test runs twice: on the memory store and on PostgreSQL (lab_test,
emptied first, as lab_app) -- the same contract on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from lab.api.app import build_app
from lab.api.memory import MemoryStore
from lab.api.passwords import PasswordHasher
from lab.api.store import Store
from lab.db.store import PostgresStore
from lab.http.app import serve

FAST_HASHER = PasswordHasher(n=2**4)  # the real cost is tested in test_passwords.py


@dataclass
class Api:
    client: aiohttp.ClientSession
    store: Store

    async def call(self, method: str, path: str, json: Any = None,
                   **kwargs: Any) -> tuple[int, Any]:
        async with self.client.request(method, path, json=json, **kwargs) as response:
            body = await response.read()
            is_json = response.content_type == "application/json"
            return response.status, (await response.json() if is_json and body else body)

    async def user(self, name: str = "Ada", email: str | None = None) -> dict:
        email = email or f"{name.lower().replace(' ', '.')}@example.com"
        status, body = await self.call("POST", "/users", {"name": name, "email": email,
                                                          "password": "secret1"})
        assert status == 201, body
        return body["data"]

    async def category(self, name: str = "Work") -> dict:
        status, body = await self.call("POST", "/categories", {"name": name})
        assert status == 201, body
        return body["data"]

    async def task(self, **fields: Any) -> dict:
        status, body = await self.call("POST", "/tasks", fields)
        assert status == 201, body
        return body["data"]


async def empty_postgres(request) -> PostgresStore:
    request.getfixturevalue("migrated_public")
    owner = await asyncpg.connect(request.getfixturevalue("owner_url"))
    try:  # as the owner: the API's role may not TRUNCATE
        await owner.execute("TRUNCATE tasks, categories, users RESTART IDENTITY CASCADE")
    finally:
        await owner.close()
    return await PostgresStore.connect(request.getfixturevalue("app_url"))


@pytest.fixture(params=["memory", "postgres"])
async def api(request):
    store = MemoryStore() if request.param == "memory" else await empty_postgres(request)
    app = build_app(store, hasher=FAST_HASHER)
    try:
        async with (serve(app) as (host, port),
                    aiohttp.ClientSession(f"http://{host}:{port}") as client):
            yield Api(client, store)
    finally:
        await store.close()


async def stored_password_hash(store: Store, user_id: int) -> str:
    """What the store keeps in place of the password (never in any answer)."""
    if isinstance(store, MemoryStore):
        return store._users[user_id]["passwordHash"]
    return await store._pool.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)
