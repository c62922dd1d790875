"""PostgreSQL gone, then back: the API answers 503 while it is gone and recovers alone.

The database's connections go through a TCP proxy that the test cuts (every
connection reset, nothing listening) and restores -- the real failure, seen
from the API, without stopping the machine's PostgreSQL for everyone.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from lab.api.app import build_app
from lab.db.store import PostgresStore
from lab.http.app import serve
from tests.api.conftest import FAST_HASHER
from tests.db.proxy import Proxy

UNAVAILABLE = {"message": "The database is unavailable; try again shortly"}


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@127.0.0.1:{port}"))


async def get(client: aiohttp.ClientSession, path: str) -> tuple[int, dict]:
    async with client.get(path) as answer:
        return answer.status, await answer.json()


async def test_the_api_answers_503_while_postgres_is_gone_and_recovers(app_url,
                                                                       migrated_public):
    proxy = Proxy("127.0.0.1", urlsplit(app_url).port or 5432)
    await proxy.start()
    store = await PostgresStore.connect(through(app_url, proxy.port))
    try:
        app = build_app(store, hasher=FAST_HASHER)
        async with serve(app) as (host, port), aiohttp.ClientSession(
                f"http://{host}:{port}", timeout=aiohttp.ClientTimeout(total=15)) as client:
            assert (await get(client, "/health"))[0] == 200
            assert (await get(client, "/tasks?limit=1"))[0] == 200

            await proxy.cut()
            for path in ("/health", "/tasks?limit=1", "/users/1"):
                assert await get(client, path) == (503, UNAVAILABLE), path

            await proxy.restore()
            for _ in range(50):  # the pool reconnects on the next request; allow 5 s
                status, _ = await get(client, "/health")
                if status == 200:
                    break
                await asyncio.sleep(0.1)
            assert status == 200
            assert (await get(client, "/tasks?limit=1"))[0] == 200
    finally:
        await store.close()
        await proxy.cut()
