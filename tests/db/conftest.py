"""PostgreSQL for the database tests: the real server on 127.0.0.1, database lab_test.

Tests that change the schema get a throwaway schema of their own (``schema``),
dropped afterwards, so they never see each other's tables. Tests of roles use
``lab_test``'s ``public`` schema, migrated once, where the default privileges of
``infra/postgres/grants.sql`` apply.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import asyncpg
import pytest

pytestmark = pytest.mark.integration


def with_search_path(url: str, schema: str) -> str:
    """The URL with ``search_path`` set: asyncpg passes unknown query keys as server settings."""
    return f"{url}?{urlencode({'search_path': schema})}"


@pytest.fixture
async def schema(owner_url):
    """A fresh, empty schema owned by lab_owner; dropped with everything in it afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(owner_url)
    await conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        await conn.close()


@pytest.fixture
async def owner(owner_url, schema):
    """A connection as lab_owner whose tables go to ``schema``."""
    conn = await asyncpg.connect(with_search_path(owner_url, schema))
    yield conn
    await conn.close()
