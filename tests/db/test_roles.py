"""lab_app, the API's role, reads and writes rows and can do nothing else.

Run against lab_test's public schema, migrated by lab_owner, where the
default privileges of infra/postgres/grants.sql apply to every table the
migrations create. Each test's writes are rolled back.
"""

from __future__ import annotations

import asyncpg
import pytest


@pytest.fixture
async def app_conn(app_url, migrated_public):
    conn = await asyncpg.connect(app_url)
    transaction = conn.transaction()
    await transaction.start()
    yield conn
    await transaction.rollback()
    await conn.close()


async def test_the_app_role_reads_and_writes_rows(app_conn):
    assert await app_conn.fetchval("SELECT current_user") == "lab_app"
    user = await app_conn.fetchval("INSERT INTO users (email, name, password_hash) "
                                   "VALUES ('role@example.com', 'R', 'h') RETURNING id")
    task = await app_conn.fetchval(
        "INSERT INTO tasks (title, user_id) VALUES ('t', $1) RETURNING id", user)
    await app_conn.execute("UPDATE tasks SET status = 'completed' WHERE id = $1", task)
    assert await app_conn.fetchval("SELECT status FROM tasks WHERE id = $1", task) == "completed"
    await app_conn.execute("DELETE FROM tasks WHERE id = $1", task)


@pytest.mark.parametrize("sql", [
    "CREATE TABLE intruder (x int)",
    "ALTER TABLE tasks ADD COLUMN intruder int",
    "DROP TABLE tasks",
    "TRUNCATE tasks",
    "CREATE INDEX intruder ON tasks (title)",
    "ALTER TABLE users DROP CONSTRAINT users_pkey",
    "CREATE SCHEMA intruder",
])
async def test_the_app_role_cannot_change_the_schema(app_conn, sql):
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.execute(sql)
