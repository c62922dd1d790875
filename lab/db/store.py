"""The Task API's store on PostgreSQL: raw, parameterised SQL on an asyncpg pool.

Implements ``lab.api.store.Store``; ``tests/api/test_store.py`` runs the same
behaviour suite against it and the memory store. Rules:

* **Never a value formatted into SQL.** Values travel as ``$1, $2 ...``
  parameters; the only text assembled at run time is a choice among fixed
  fragments (which filters apply, ``ASC`` or ``DESC``, which columns an
  update sets -- names from a whitelist, never from the client).
* **One round trip per call.** A task comes with its user and category from
  one query with two ``LEFT JOIN``s (no N+1); a page of tasks comes with
  its total counted beside it (``list_tasks_sql``); an insert or update returns the joined row
  through a ``WITH ... RETURNING`` CTE.
* **Every change to a task writes its event** (``task.created``, ``task.updated``,
  ``task.deleted``) into ``outbox`` in the same statement, so in the same
  transaction: the event exists if and only if the change committed (challenge 5's
  transactional outbox; ``0003_events.sql``).
* **The database's errors, in the API's words.** A unique violation on
  ``users_email_lower_key`` is ``DuplicateEmail`` (409); a foreign key
  violation names the column (``UnknownReference``, 400); a database that is
  gone is ``StoreUnavailable`` (503, ``pool.unavailable``).

Columns are aliased to the API's camelCase in SQL, so a row becomes the
record with ``dict(row)``.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from lab.api.store import DuplicateEmail, Page, Record, Store, TaskQuery, UnknownReference
from lab.db.pool import create_pool, unavailable

_USER = 'id, name, email, created_at AS "createdAt", updated_at AS "updatedAt"'
_CATEGORY = 'id, name, created_at AS "createdAt"'
_TASK = """t.id, t.title, t.description, t.status, t.user_id AS "userId",
    t.category_id AS "categoryId", t.created_at AS "createdAt", t.updated_at AS "updatedAt",
    u.name AS user_name, u.email AS user_email, c.name AS category_name"""
_JOINS = "LEFT JOIN users u ON u.id = t.user_id LEFT JOIN categories c ON c.id = t.category_id"
# API field → column: the only names an UPDATE may set.
_TASK_COLUMNS = {"title": "title", "description": "description", "status": "status",
                 "userId": "user_id", "categoryId": "category_id"}
_USER_COLUMNS = {"name": "name", "email": "email"}
_FOREIGN_KEYS = {"tasks_user_id_fkey": "userId", "tasks_category_id_fkey": "categoryId"}
# The event's payload: the task as the API answers it, without the embedded user and category.
_TASK_PAYLOAD = """jsonb_build_object('id', t.id, 'title', t.title, 'description', t.description,
    'status', t.status, 'userId', t.user_id, 'categoryId', t.category_id,
    'createdAt', t.created_at, 'updatedAt', t.updated_at)"""


class PostgresStore(Store):
    name = "postgres"

    def __init__(self, pool: asyncpg.Pool):
        self._pool = pool

    @classmethod
    async def connect(cls, url: str) -> PostgresStore:
        return cls(await create_pool(url))

    def __repr__(self) -> str:
        return f"<PostgresStore pool size={self._pool.get_size()}/{self._pool.get_max_size()}>"

    async def check(self) -> None:
        async with unavailable():
            await self._pool.fetchval("SELECT 1")

    async def close(self) -> None:
        await self._pool.close()

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with unavailable():
            return await self._pool.fetch(sql, *args)

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with unavailable():
            return await self._pool.fetchrow(sql, *args)

    # users -----------------------------------------------------------------------
    async def list_users(self, page: int, limit: int) -> Page:
        return await self._page(f"SELECT {_USER}, count(*) OVER () AS total FROM users "
                                "ORDER BY id LIMIT $1 OFFSET $2", "users", page, limit, dict)

    async def get_user(self, user_id: int) -> Record | None:
        return _record(await self._fetchrow(f"SELECT {_USER} FROM users WHERE id = $1", user_id))

    async def create_user(self, name: str, email: str, password_hash: str) -> Record:
        try:
            return dict(await self._fetchrow(
                f"INSERT INTO users (name, email, password_hash) VALUES ($1, $2, $3) "
                f"RETURNING {_USER}", name, email, password_hash))
        except asyncpg.UniqueViolationError:
            raise DuplicateEmail(email) from None

    async def update_user(self, user_id: int, changes: dict[str, Any]) -> Record | None:
        sets, args = _assignments(changes, _USER_COLUMNS, first=2)
        try:
            return _record(await self._fetchrow(
                f"UPDATE users SET {sets} WHERE id = $1 RETURNING {_USER}", user_id, *args))
        except asyncpg.UniqueViolationError:
            raise DuplicateEmail(changes["email"]) from None

    async def delete_user(self, user_id: int) -> bool:
        return await self._delete("users", user_id)

    # categories ------------------------------------------------------------------
    async def list_categories(self, page: int, limit: int) -> Page:
        return await self._page(f"SELECT {_CATEGORY}, count(*) OVER () AS total FROM categories "
                                "ORDER BY id LIMIT $1 OFFSET $2", "categories", page, limit, dict)

    async def get_category(self, category_id: int) -> Record | None:
        return _record(await self._fetchrow(
            f"SELECT {_CATEGORY} FROM categories WHERE id = $1", category_id))

    async def create_category(self, name: str) -> Record:
        return dict(await self._fetchrow(
            f"INSERT INTO categories (name) VALUES ($1) RETURNING {_CATEGORY}", name))

    async def update_category(self, category_id: int, changes: dict[str, Any]) -> Record | None:
        return _record(await self._fetchrow(
            f"UPDATE categories SET name = $2 WHERE id = $1 RETURNING {_CATEGORY}",
            category_id, changes["name"]))

    async def delete_category(self, category_id: int) -> bool:
        return await self._delete("categories", category_id)

    # tasks -----------------------------------------------------------------------
    async def get_task(self, task_id: int) -> Record | None:
        row = await self._fetchrow(GET_TASK_SQL, task_id)
        return None if row is None else _task(row)

    async def create_task(self, fields: dict[str, Any]) -> Record:
        row = await self._write_task(
            "INSERT INTO tasks (title, description, status, user_id, category_id) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING *", "task.created",
            fields, fields["title"], fields.get("description", ""),
            fields.get("status", "pending"), fields["userId"], fields.get("categoryId"))
        return _task(row)

    async def update_task(self, task_id: int, changes: dict[str, Any]) -> Record | None:
        sets, args = _assignments(changes, _TASK_COLUMNS, first=2)
        row = await self._write_task(f"UPDATE tasks SET {sets} WHERE id = $1 RETURNING *",
                                     "task.updated", changes, task_id, *args)
        return None if row is None else _task(row)

    async def delete_task(self, task_id: int) -> bool:
        row = await self._fetchrow(
            "WITH t AS (DELETE FROM tasks WHERE id = $1 RETURNING id), "
            "e AS (INSERT INTO outbox (type, payload) "
            "      SELECT 'task.deleted', jsonb_build_object('id', t.id) FROM t) "
            "SELECT count(*) AS n FROM t", task_id)
        return row["n"] == 1

    async def list_tasks(self, query: TaskQuery) -> Page:
        sql, args = list_tasks_sql(query)
        rows = await self._fetch(sql, *args)
        if query.after is not None:  # keyset: one row more than the page says if more follow
            return Page([_task(r) for r in rows[:query.limit]], None, len(rows) > query.limit)
        total = rows[0]["total"]  # there is always a row: past the end, one with no task
        items = [_task(r) for r in rows if r["id"] is not None]
        return Page(items, total, query.page * query.limit < total)

    async def _write_task(self, sql: str, event: str, fields: dict[str, Any],
                          *args: Any) -> asyncpg.Record | None:
        """An INSERT or UPDATE ... RETURNING *, and its event in the outbox, in one statement.

        Answered with the joined row. One statement is one transaction: the task's
        change and its event commit together or not at all (the transactional outbox),
        and a change that touched no row (a missing id) writes no event.
        """
        assert event in ("task.created", "task.updated"), event  # a fixed name, not input
        try:
            return await self._fetchrow(
                f"WITH t AS ({sql}), "
                f"e AS (INSERT INTO outbox (type, payload) SELECT '{event}', {_TASK_PAYLOAD} "
                f"      FROM t) "
                f"SELECT {_TASK} FROM t {_JOINS}", *args)
        except asyncpg.ForeignKeyViolationError as error:
            field = _FOREIGN_KEYS.get(error.constraint_name or "", "userId")
            raise UnknownReference(field, fields[field]) from None

    async def _delete(self, table: str, row_id: int) -> bool:
        assert table in ("users", "categories", "tasks"), table  # a fixed name, not input
        async with unavailable():
            status = await self._pool.execute(f"DELETE FROM {table} WHERE id = $1", row_id)
        return status == "DELETE 1"

    async def _page(self, sql: str, table: str, page: int, limit: int, shape) -> Page:
        rows = await self._fetch(sql, limit, (page - 1) * limit)
        if rows:
            total = rows[0]["total"]
        else:
            total = (await self._fetchrow(f"SELECT count(*) AS n FROM {table}"))["n"]
        items = [shape({k: v for k, v in row.items() if k != "total"}) for row in rows]
        return Page(items, total, page * limit < total)


GET_TASK_SQL = f"SELECT {_TASK} FROM tasks t {_JOINS} WHERE t.id = $1"


def list_tasks_sql(query: TaskQuery) -> tuple[str, list[Any]]:
    """The one query of ``GET /tasks`` and its parameters: the page, with its total.

    Shaped for the indexes of ``0002_list_indexes.sql``: the page is chosen from
    ``tasks`` alone (walk the filter's index in order, stop after ``LIMIT``) and
    only its rows are joined to their user and category; the total is counted
    beside it, from ``tasks`` alone too. The total goes first and the page is
    left-joined to it, so even a page past the end answers one row that carries
    the total (its task columns NULL). A keyset page (``query.after``) has no total:
    it reads one row more than the page, to tell whether more follow.

    Public so that ``python -m lab.db explain`` plans exactly what the API runs.
    """
    where, args = _filters(query)
    order = "DESC" if query.newest_first else "ASC"
    if query.after is not None:  # keyset: strictly past (createdAt, id)
        args += list(query.after)
        beyond = "<" if query.newest_first else ">"
        where.append(f"(t.created_at, t.id) {beyond} (${len(args) - 1}, ${len(args)})")
        limit, offset = query.limit + 1, 0
    else:
        limit, offset = query.limit, (query.page - 1) * query.limit
    condition = f"WHERE {' AND '.join(where)}" if where else ""
    page = (f"SELECT * FROM tasks t {condition} ORDER BY t.created_at {order}, t.id {order} "
            f"LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}")
    if query.after is not None:
        sql = (f"SELECT {_TASK} FROM ({page}) t {_JOINS} "
               f"ORDER BY t.created_at {order}, t.id {order}")
    else:
        sql = (f"SELECT {_TASK}, total.n AS total "
               f"FROM (SELECT count(*) AS n FROM tasks t {condition}) total "
               f"LEFT JOIN (({page}) t {_JOINS}) ON true "
               f"ORDER BY t.created_at {order}, t.id {order}")
    return sql, [*args, limit, offset]


def _filters(query: TaskQuery) -> tuple[list[str], list[Any]]:
    """The WHERE conditions of a task list, each with its parameter, on ``tasks t`` alone.

    The search matches user and category names through the ids of the users and
    categories whose name matches (two small lookups), so the count and the page
    need no join and each alternative of the OR can use an index.
    """
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("t.status", query.status), ("t.user_id", query.user_id),
                          ("t.category_id", query.category_id)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if query.search:
        args.append(f"%{_escape_like(query.search)}%")
        n = len(args)
        where.append(f"(t.title ILIKE ${n} OR t.description ILIKE ${n} "
                     f"OR t.user_id = ANY (ARRAY(SELECT id FROM users WHERE name ILIKE ${n})) "
                     f"OR t.category_id = ANY (ARRAY(SELECT id FROM categories "
                     f"WHERE name ILIKE ${n})))")
    return where, args


def _escape_like(text: str) -> str:
    """``%`` and ``_`` are wildcards in LIKE; a client's search treats them as characters."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _assignments(changes: dict[str, Any], columns: dict[str, str],
                 first: int) -> tuple[str, list[Any]]:
    """``"title = $2, status = $3"`` and the values, for the fields given (whitelisted)."""
    names = [field for field in columns if field in changes]
    assert names, "the API's schemas require at least one field"
    sets = ", ".join(f"{columns[f]} = ${first + i}" for i, f in enumerate(names))
    return sets, [changes[f] for f in names]


def _record(row: asyncpg.Record | None) -> Record | None:
    return None if row is None else dict(row)


def _task(row: asyncpg.Record) -> Record:
    task = {key: row[key] for key in ("id", "title", "description", "status", "userId",
                                      "categoryId", "createdAt", "updatedAt")}
    task["user"] = (None if row["userId"] is None else
                    {"id": row["userId"], "name": row["user_name"], "email": row["user_email"]})
    task["category"] = (None if row["categoryId"] is None else
                        {"id": row["categoryId"], "name": row["category_name"]})
    return task
