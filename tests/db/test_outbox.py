"""The transactional outbox: each change to a task writes its event in the same statement.

Against the real PostgreSQL, in ``lab_test``'s ``public`` schema (emptied
first), through ``PostgresStore`` as the API's role: the event exists if and
only if the change committed.
"""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg
import pytest

from lab.api.store import UnknownReference
from lab.db.store import PostgresStore

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(migrated_public, owner_url, app_url):
    owner = await asyncpg.connect(owner_url)
    try:  # as the owner: the API's role may not TRUNCATE
        await owner.execute("TRUNCATE tasks, categories, users, outbox RESTART IDENTITY CASCADE")
    finally:
        await owner.close()
    made = await PostgresStore.connect(app_url)
    try:
        yield made
    finally:
        await made.close()


async def events(store: PostgresStore) -> list[tuple[str, dict]]:
    """Each event's type and payload, its timestamps read back as datetimes: jsonb writes
    ``.67311`` where Python writes ``.673110``, the same instant."""
    rows = await store._fetch("SELECT type, payload FROM outbox ORDER BY occurred_at, type")
    found = []
    for row in rows:
        payload = json.loads(row["payload"])
        for field in ("createdAt", "updatedAt"):
            if field in payload:
                payload[field] = datetime.fromisoformat(payload[field])
        found.append((row["type"], payload))
    return found


def as_payload(task: dict) -> dict:
    """The task as the API answers it, without the embedded user and category."""
    fields = ("id", "title", "description", "status", "userId", "categoryId", "createdAt",
              "updatedAt")
    return {field: task[field] for field in fields}


async def test_create_update_and_delete_each_write_their_event(store):
    user = await store.create_user("Ada", "ada@example.com", "hash")
    task = await store.create_task({"title": "Write the report", "userId": user["id"]})
    changed = await store.update_task(task["id"], {"status": "completed"})
    assert await store.delete_task(task["id"]) is True
    assert await events(store) == [
        ("task.created", as_payload(task)),
        ("task.updated", as_payload(changed)),
        ("task.deleted", {"id": task["id"]}),
    ]
    ids = await store._fetch("SELECT id, published_at FROM outbox")
    assert len({row["id"] for row in ids}) == 3 and {row["published_at"] for row in ids} == {None}


async def test_a_change_that_fails_or_finds_nothing_writes_no_event(store):
    with pytest.raises(UnknownReference):  # a foreign key refuses the task: no event either
        await store.create_task({"title": "Orphan", "userId": 999})
    assert await store.update_task(12345, {"status": "completed"}) is None
    assert await store.delete_task(12345) is False
    assert await events(store) == []


async def test_an_event_commits_with_its_change_or_not_at_all(store):
    user = await store.create_user("Ada", "ada@example.com", "hash")
    # Past the API's validation, the database's CHECK refuses the task: the statement
    # that would also have written the event is rolled back whole.
    with pytest.raises(asyncpg.CheckViolationError):
        await store.create_task({"title": "x" * 201, "userId": user["id"]})
    task = await store.create_task({"title": "Kept", "userId": user["id"]})
    with pytest.raises(asyncpg.CheckViolationError):
        await store.update_task(task["id"], {"status": "nonsense"})
    assert [kind for kind, _ in await events(store)] == ["task.created"]
    assert (await store.get_task(task["id"]))["status"] == "pending"
