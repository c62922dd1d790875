"""``python -m lab.db explain``: the repository's own queries under EXPLAIN, and checks for tests.

``QUERIES`` names each query the API runs, built from ``lab.db.store`` (so it
is exactly the API's SQL) with representative parameters, some read from the
data (an id that exists, a cursor a million rows deep). ``explain()`` runs
``EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON)``, or without ``ANALYZE``
only plans; ``lab.db.plan`` reads the result (see its docstring for how to
read a plan). ``without_index()`` shows the plan the planner falls back to
when an index is dropped in a transaction that is always rolled back, and
``with_index()`` the plan with an index built in one; ``assert_uses_index()``
is the check a test makes.

Parameters are bound, as the API sends them, so the plan is the one for these
values (a custom plan). The API's prepared statements may switch to a generic
plan after five runs (``plan_cache_mode``); PostgreSQL 16's ``EXPLAIN
(GENERIC_PLAN)`` shows that one.

**The production tools.** psql's text EXPLAIN shows more per node (conditions,
sort method); pgAdmin draws the same JSON as a graph; explain.depesz.com and
explain.dalibo.com take pasted output and colour each node's exclusive time and
estimate miss; ``auto_explain`` logs the plans of slow statements in production
with their real parameters, and ``pg_stat_statements`` tells which query to
look at. This module trades all that for fixed named queries (the same plan
every run, to paste in a README), checks a test can assert, and the plan
without an index or with a new one -- really built, then rolled back, where
HypoPG only pretends one exists, which costs nothing but cannot be ANALYZEd.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from lab.api.store import TaskQuery
from lab.db.plan import LARGE_TABLE_ROWS, Plan, PlanNode, parse, render, side_by_side, warnings
from lab.db.store import GET_TASK_SQL, PostgresStore, list_tasks_sql

__all__ = ["LARGE_TABLE_ROWS", "QUERIES", "Plan", "PlanNode", "assert_uses_index", "explain",
           "render", "report", "side_by_side", "warnings", "with_index", "without_index"]

PAGE_SIZE = 20
DEEP_PAGE = 50_000  # page 50,000 of 20: a million rows in


# running EXPLAIN ---------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def _rolled_back(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """A transaction (a savepoint, inside one already open) that never commits."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield
    finally:
        await transaction.rollback()  # also when the body succeeded: that is the point


async def explain(conn: asyncpg.Connection, sql: str, args: Sequence[Any] = (), *,
                  analyze: bool = False) -> Plan:
    """The plan of ``sql`` with ``args`` bound; with ``analyze``, run it and measure."""
    options = "ANALYZE, BUFFERS, VERBOSE, FORMAT JSON" if analyze else "VERBOSE, FORMAT JSON"
    # ANALYZE runs the statement: an INSERT or UPDATE would really write. Roll it back.
    async with _rolled_back(conn) if analyze else contextlib.nullcontext():
        document = json.loads(await conn.fetchval(f"EXPLAIN ({options}) {sql}", *args))
    plan = parse(document)
    # VERBOSE names each table's schema, so the size looked up is that of the table scanned.
    scanned = [node for node in plan.nodes() if node.relation and node.schema]
    rows = await conn.fetch(
        "SELECT r.s, r.t, c.reltuples FROM unnest($1::text[], $2::text[]) AS r (s, t) "
        "JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', r.s, r.t)) "
        "WHERE c.reltuples >= 0",  # -1: never analyzed, size unknown
        [n.schema for n in scanned], [n.relation for n in scanned])
    sizes = {(s, t): n for s, t, n in rows}
    for node in scanned:
        node.table_rows = sizes.get((node.schema, node.relation))
    return plan


async def without_index(conn: asyncpg.Connection, index_name: str, sql: str,
                        args: Sequence[Any] = (), *, analyze: bool = False) -> Plan:
    """The plan of ``sql`` as if ``index_name`` did not exist: dropped, then rolled back.

    Needs the table's owner. DROP INDEX locks the whole table (ACCESS EXCLUSIVE) until
    the rollback, so every other query of that table waits meanwhile: not on a busy database.
    """
    target = await conn.fetchrow(
        "SELECT c.oid::regclass::text AS index, i.indrelid::regclass::text AS table, "
        "       quote_ident(con.conname) AS constraint "
        "FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
        "LEFT JOIN pg_constraint con ON con.conindid = c.oid AND con.conrelid = i.indrelid "
        "      AND con.contype IN ('p', 'u', 'x') "
        "WHERE c.oid = to_regclass($1)", index_name)
    if target is None:
        raise ValueError(f"no index named {index_name!r} on the search path")
    # Names come from the catalog, quoted by PostgreSQL; the caller's text was only a parameter.
    if target["constraint"]:  # a primary key or unique constraint owns its index
        drop = f"ALTER TABLE {target['table']} DROP CONSTRAINT {target['constraint']} CASCADE"
    else:
        drop = f"DROP INDEX {target['index']}"
    async with _rolled_back(conn):
        # Waiting behind a long transaction would make every later query queue behind us.
        await conn.execute("SET LOCAL lock_timeout = '5s'")
        await conn.execute(drop)
        return await explain(conn, sql, args, analyze=analyze)


async def with_index(conn: asyncpg.Connection, create_index: str, sql: str,
                     args: Sequence[Any] = (), *, analyze: bool = False) -> Plan:
    """The plan of ``sql`` with an index that does not exist: built, then rolled back.

    ``create_index`` is a ``CREATE INDEX`` statement of the operator's (the command
    line's, never a client's). The build reads the whole table and locks writes to
    it until the rollback: try an index before committing to it, on a quiet database.
    """
    if not create_index.lstrip().upper().startswith(("CREATE INDEX", "CREATE UNIQUE INDEX")):
        raise ValueError(f"--with-index takes a CREATE INDEX statement, not {create_index!r}")
    async with _rolled_back(conn):
        await conn.execute("SET LOCAL lock_timeout = '5s'")
        await conn.execute(create_index)
        await conn.execute("ANALYZE tasks")  # an expression index has statistics of its own
        return await explain(conn, sql, args, analyze=analyze)


async def assert_uses_index(conn: asyncpg.Connection, sql: str, args: Sequence[Any],
                            index_name: str) -> None:
    """For tests: AssertionError, naming the plan's scans, unless a node uses ``index_name``."""
    plan = await explain(conn, sql, args)
    if not any(node.index == index_name for node in plan.nodes()):
        scans = "; ".join(n.label for n in plan.nodes() if "Scan" in n.node_type) or "none"
        raise AssertionError(f"the plan does not use {index_name}; its scans: {scans}\n"
                             f"{render(plan)}")


# the repository's queries, with representative parameters ---------------------------------
Query = tuple[str, list[Any]]


async def _sample_task(conn: asyncpg.Connection) -> dict[str, int]:
    """A task from the middle of the table with a user and a category (found by the key)."""
    row = await conn.fetchrow(
        "SELECT id, user_id, category_id FROM tasks WHERE id >= (SELECT max(id) / 2 FROM tasks) "
        "AND user_id IS NOT NULL AND category_id IS NOT NULL ORDER BY id LIMIT 1")
    return dict(row) if row else {"id": 1, "user_id": 1, "category_id": 1}  # an empty table


async def _deep_cursor(conn: asyncpg.Connection) -> tuple[datetime, int]:
    """(created_at, id) of the last task on page DEEP_PAGE - 1, newest first: keyset's
    way to page DEEP_PAGE. A smaller table gives its oldest task (an empty page, as OFFSET's)."""
    row = await conn.fetchrow("SELECT created_at, id FROM tasks ORDER BY created_at DESC, "
                              "id DESC OFFSET $1 LIMIT 1", (DEEP_PAGE - 1) * PAGE_SIZE - 1)
    row = row or await conn.fetchrow("SELECT created_at, id FROM tasks "
                                     "ORDER BY created_at, id LIMIT 1")
    return (row["created_at"], row["id"]) if row else (datetime(1970, 1, 1, tzinfo=UTC), 0)


class _Recorder:
    """Stands in for the pool: keeps what a store method sends, runs nothing, finds nothing."""

    def __init__(self) -> None:
        self.statements: list[Query] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.statements.append((sql, list(args)))
        return []

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, int]:
        self.statements.append((sql, list(args)))
        return {"n": 0}


async def _list_users(conn: asyncpg.Connection) -> Query:
    recorder = _Recorder()  # the users page's SQL is not public: take it from the store itself
    await PostgresStore(recorder).list_users(page=1, limit=PAGE_SIZE)  # type: ignore[arg-type]
    return recorder.statements[0]


def _tasks(make: Callable[[dict[str, int]], TaskQuery]) -> Callable[[asyncpg.Connection],
                                                                     Awaitable[Query]]:
    """A task-list query; ``make`` builds its TaskQuery from a sample task's ids."""
    async def build(conn: asyncpg.Connection) -> Query:
        return list_tasks_sql(make(await _sample_task(conn)))
    return build


async def _get_task(conn: asyncpg.Connection) -> Query:
    return GET_TASK_SQL, [(await _sample_task(conn))["id"]]


async def _deep_keyset(conn: asyncpg.Connection) -> Query:
    return list_tasks_sql(TaskQuery(limit=PAGE_SIZE, after=await _deep_cursor(conn)))


async def _next_pending(conn: asyncpg.Connection) -> Query:
    """Page 2 of the pending tasks by keyset: after the last task of page 1."""
    row = await conn.fetchrow("SELECT created_at, id FROM tasks WHERE status = 'pending' "
                              "ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
                              PAGE_SIZE - 1)
    after = (row["created_at"], row["id"]) if row else (datetime(1970, 1, 1, tzinfo=UTC), 0)
    return list_tasks_sql(TaskQuery(status="pending", limit=PAGE_SIZE, after=after))


def _fixed(sql: str, *args: Any) -> Callable[[asyncpg.Connection], Awaitable[Query]]:
    """A query whose parameters need nothing from the data."""
    async def build(conn: asyncpg.Connection) -> Query:
        return sql, list(args)
    return build


# Not the API's: the two ways to write "titles containing a phrase", for the README's
# lesson on which index serves a substring search (``--with-index``, ``--without-index``).
TITLE_PHRASE = "%call the dentist%"
TITLE_CONTAINS = "SELECT id, title FROM tasks WHERE title ILIKE $1"
TITLE_CONTAINS_LOWER = "SELECT id, title FROM tasks WHERE lower(title) LIKE lower($1)"


# name → (connection → (sql, args)); a factory may read the data for a value that exists.
QUERIES: dict[str, Callable[[asyncpg.Connection], Awaitable[Query]]] = {
    "get-task": _get_task,
    "list-pending": _tasks(lambda _: TaskQuery(status="pending", limit=PAGE_SIZE)),
    "next-pending": _next_pending,
    "list-by-user": _tasks(lambda task: TaskQuery(user_id=task["user_id"], limit=PAGE_SIZE)),
    "list-by-category": _tasks(lambda task: TaskQuery(category_id=task["category_id"],
                                                      limit=PAGE_SIZE)),
    "search": _tasks(lambda _: TaskQuery(search="report", limit=PAGE_SIZE)),
    "deep-offset": _tasks(lambda _: TaskQuery(page=DEEP_PAGE, limit=PAGE_SIZE)),
    "deep-keyset": _deep_keyset,
    "list-users": _list_users,
    "title-contains": _fixed(TITLE_CONTAINS, TITLE_PHRASE),
    "title-contains-lower": _fixed(TITLE_CONTAINS_LOWER, TITLE_PHRASE),
}


async def report(conn: asyncpg.Connection, name: str, *, analyze: bool = False,
                 without: str | None = None, create_index: str | None = None) -> str:
    """What ``python -m lab.db explain --query NAME`` prints for one query: its plan, or
    its plan beside the one without index ``without`` or with index ``create_index``."""
    if name not in QUERIES:
        raise ValueError(f"no query named {name!r}; the queries: {', '.join(QUERIES)}")
    sql, args = await QUERIES[name](conn)
    plan = await explain(conn, sql, args, analyze=analyze)
    text = render(plan)
    if without is not None:
        other = await without_index(conn, without, sql, args, analyze=analyze)
        text = side_by_side(text, render(other), (f"with {without}", f"without {without}"))
    if create_index is not None:
        other = await with_index(conn, create_index, sql, args, analyze=analyze)
        text = side_by_side(text, render(other), ("as it is", f"with {create_index}"))
    return "\n".join([f"== {name}", text, *(f"warning: {w}" for w in warnings(plan))])
