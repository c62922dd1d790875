"""The rules the database keeps by itself (migration 0001), tried on a fresh schema."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from lab.db.migrator import migrate


@pytest.fixture
async def db(owner):
    await migrate(owner)
    return owner


async def add_user(db, email="ada@example.com", name="Ada") -> int:
    return await db.fetchval(
        "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, 'h') RETURNING id",
        email, name)


async def test_emails_are_unique_whatever_their_case(db):
    await add_user(db, "ada@example.com")
    with pytest.raises(asyncpg.UniqueViolationError):
        await add_user(db, "ADA@Example.com")


@pytest.mark.parametrize("sql", [
    "INSERT INTO tasks (title, status) VALUES ('t', 'done')",
    "INSERT INTO tasks (title) VALUES ('')",
    "INSERT INTO tasks (title, description) VALUES ('t', repeat('x', 1001))",
    "INSERT INTO categories (name) VALUES (repeat('x', 101))",
    "INSERT INTO users (email, name, password_hash) VALUES ('a@b.c', '', 'h')",
])
async def test_checks_refuse_what_the_api_refuses(db, sql):
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(sql)


@pytest.mark.parametrize("sql", [
    "INSERT INTO tasks (title, description) VALUES ('t', NULL)",
    "INSERT INTO users (email, name) VALUES ('a@b.c', 'A')",
])
async def test_required_columns_are_not_null(db, sql):
    with pytest.raises(asyncpg.NotNullViolationError):
        await db.execute(sql)


async def test_a_task_must_name_an_existing_user_and_category(db):
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute("INSERT INTO tasks (title, user_id) VALUES ('t', 42)")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute("INSERT INTO tasks (title, category_id) VALUES ('t', 42)")


async def test_deleting_a_user_or_category_keeps_the_task_with_a_null_link(db):
    user = await add_user(db)
    category = await db.fetchval("INSERT INTO categories (name) VALUES ('Work') RETURNING id")
    task = await db.fetchval("INSERT INTO tasks (title, user_id, category_id) "
                             "VALUES ('t', $1, $2) RETURNING id", user, category)
    await db.execute("DELETE FROM users WHERE id = $1", user)
    await db.execute("DELETE FROM categories WHERE id = $1", category)
    row = await db.fetchrow("SELECT user_id, category_id FROM tasks WHERE id = $1", task)
    assert (row["user_id"], row["category_id"]) == (None, None)


async def test_the_database_keeps_the_timestamps(db):
    task = await db.fetchrow("INSERT INTO tasks (title) VALUES ('t') "
                             "RETURNING id, status, description, created_at, updated_at")
    assert (task["status"], task["description"]) == ("pending", "")
    assert task["created_at"] == task["updated_at"] and task["created_at"].tzinfo is not None
    await asyncio.sleep(0.01)
    after = await db.fetchrow("UPDATE tasks SET title = 'u' WHERE id = $1 "
                              "RETURNING created_at, updated_at", task["id"])
    assert after["created_at"] == task["created_at"]
    assert after["updated_at"] > task["updated_at"]  # moved by the trigger, not the client
