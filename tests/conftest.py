"""Fixtures shared by every test package; keep this file small."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

import asyncpg
import pytest

from lab import settings
from lab.db.migrator import migrate


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return settings.REPO_ROOT


@pytest.fixture(scope="session")
def lab_settings() -> settings.Settings:
    """The settings as the lab reads them: environment, then .env, then .env.example."""
    return settings.load()


# The database tests own lab_test: they empty and migrate its public schema and truncate
# its tables, so two test runs at once on one machine would trip over each other.
@pytest.fixture(scope="session")
def owner_url(lab_settings) -> str:
    return lab_settings.test_database_owner_url


@pytest.fixture(scope="session")
def app_url(lab_settings) -> str:
    return lab_settings.test_database_url


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
    # In a thread of its own: the first test to ask may already be running an event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, run()).result()
