"""Fixtures shared by the queue's PostgreSQL tests (test_relay.py has its own ``owner``,
which empties the outbox instead)."""

from __future__ import annotations

import asyncpg
import pytest


@pytest.fixture
async def owner(migrated_public, owner_url):
    """The owner's connection, the workers' tables emptied (the API's role may not TRUNCATE)."""
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute("TRUNCATE processed_messages, notifications RESTART IDENTITY")
        yield conn
    finally:
        await conn.close()
