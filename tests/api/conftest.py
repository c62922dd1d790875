"""The Task API served on a free port, with a client that returns (status, JSON body)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from lab.api.app import build_app
from lab.api.memory import MemoryStore
from lab.api.passwords import PasswordHasher
from lab.http.app import serve

FAST_HASHER = PasswordHasher(n=2**4)  # the real cost is tested in test_passwords.py


@dataclass
class Api:
    client: aiohttp.ClientSession
    store: MemoryStore

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


@pytest.fixture
async def api():
    store = MemoryStore()
    app = build_app(store, hasher=FAST_HASHER)
    async with serve(app) as (host, port), aiohttp.ClientSession(f"http://{host}:{port}") as c:
        yield Api(c, store)
