"""PostgreSQL for the database tests: the real server on 127.0.0.1, database lab_test.

Tests that change the schema get a throwaway schema of their own (``schema``),
dropped afterwards, so they never see each other's tables. Tests of roles use
``lab_test``'s ``public`` schema, migrated once, where the default privileges of
``infra/postgres/grants.sql`` apply.
"""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlencode

import asyncpg
import pytest

from lab.db.migrator import migrate

pytestmark = pytest.mark.integration


def with_search_path(url: str, schema: str) -> str:
    """The URL with ``search_path`` set: asyncpg passes unknown query keys as server settings."""
    return f"{url}?{urlencode({'search_path': schema})}"


@pytest.fixture(scope="session")
def owner_url(lab_settings) -> str:
    return lab_settings.test_database_owner_url


@pytest.fixture(scope="session")
def app_url(lab_settings) -> str:
    return lab_settings.test_database_url


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


# Empties lab_test's public schema of what the migrations made (tables, the lab's own
# functions; not extensions), keeping the schema itself and its default privileges.
_EMPTY_PUBLIC = """
DO $$
DECLARE object record;
BEGIN
    FOR object IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
        EXECUTE format('DROP TABLE IF EXISTS public.%I CASCADE', object.tablename);
    END LOOP;
    FOR object IN
        SELECT p.oid::regprocedure AS signature FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proowner = current_user::regrole
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', object.signature);
    END LOOP;
END
$$"""


@pytest.fixture(scope="session")
def migrated_public(owner_url) -> None:
    """lab_test's public schema, emptied and migrated afresh once per test session, so an
    earlier session's leftovers (or an edited migration) never leak into this one."""
    async def run():
        conn = await asyncpg.connect(owner_url)
        try:
            await conn.execute(_EMPTY_PUBLIC)
            await migrate(conn)
        finally:
            await conn.close()
    asyncio.run(run())
