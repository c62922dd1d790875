"""The database both repositories read and write: a schema of its own in ``lab_test``.

``prepare`` builds schema ``bench_db`` as ``lab_owner`` -- dropped if a
crashed run left it behind, created, migrated with ``lab.db.migrator`` (the
migrator follows ``search_path``, so every table, sequence and trigger lands
in it) and seeded with ``lab.db.seed``: 200 users, 12 categories and 100,000
tasks, the same rows on every run (``seed_value=1``). ``drop`` removes it.

The API's role, ``lab_app``, gets the rights the default privileges of
``infra/postgres/grants.sql`` would give it in ``public`` (which they do not
cover here): USAGE on the schema, rows of its tables, its sequences. Both
sides then connect as ``lab_app`` with ``search_path=bench_db``, so the SQL of
neither names the schema, exactly as in the API.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg

from lab.db.migrator import migrate
from lab.db.seed import Progress, seed

SCHEMA = "bench_db"
USERS = 200
CATEGORIES = 12
TASKS = 100_000


def with_search_path(url: str, schema: str = SCHEMA) -> str:
    """The URL with ``search_path`` set: asyncpg passes unknown query keys as server settings."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("search_path", schema)]
    return parts._replace(query=urlencode(query)).geturl()


async def prepare(owner_url: str, app_url: str, *, schema: str = SCHEMA,
                  users: int = USERS, tasks: int = TASKS,
                  progress: Progress = lambda table, done, total: None) -> dict[str, int]:
    """A fresh, migrated, seeded ``schema`` that the role of ``app_url`` may use."""
    app_role = urlsplit(app_url).username
    assert app_role, "the app's URL names its role"
    quoted = _quote(schema)  # a name from this module's callers, quoted all the same
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")  # a crashed run's leftovers
        await conn.execute(f"CREATE SCHEMA {quoted}")
    finally:
        await conn.close()
    conn = await asyncpg.connect(with_search_path(owner_url, schema))
    try:
        await migrate(conn)
        counts = await seed(conn, user_count=users, category_count=CATEGORIES,
                            task_count=tasks, seed_value=1, progress=progress)
        role = _quote(app_role)  # a role name from settings, quoted as an identifier
        await conn.execute(f"GRANT USAGE ON SCHEMA {quoted} TO {role}")
        await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES "
                           f"IN SCHEMA {quoted} TO {role}")
        await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quoted} TO {role}")
    finally:
        await conn.close()
    return counts


async def statuses(url: str, count: int) -> dict[int, str]:
    """The status of the first ``count`` seeded tasks that are not pending, by id."""
    conn = await asyncpg.connect(with_search_path(url))
    try:
        rows = await conn.fetch("SELECT id, status FROM tasks WHERE status <> 'pending' "
                                "ORDER BY id LIMIT $1", count)
    finally:
        await conn.close()
    return {row["id"]: row["status"] for row in rows}


async def drop(owner_url: str, schema: str = SCHEMA) -> None:
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE")
    finally:
        await conn.close()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
