"""EXPLAIN ANALYZE at a million tasks: each hot query with its index and without it.

Schema ``bench_plans`` in ``lab_test`` is migrated (so it has the indexes of
``0002_list_indexes.sql``) and seeded like ``python -m lab.db seed --tasks
1000000`` (1,000 users, 12 categories; about 30 s here). Each query of
``lab.db.explain.QUERIES`` -- the API's own SQL with representative
parameters -- runs under ``EXPLAIN (ANALYZE, BUFFERS)``; the figure is
PostgreSQL's own execution time, which leaves out the network and the client.
The time without the index comes from ``without_index``: the index dropped in
a transaction that is rolled back, so the planner picks its next-best plan.
Rounds alternate with, without, with, without ...; the figure is the median.

The deep page compares two queries rather than one query with and without an
index: page 50,000 of 20 (newest first) by ``OFFSET`` against the same page
by keyset cursor, both with every index in place. The issue's target: keyset
at least 50× faster, so keyset / OFFSET ≤ 0.02.

Under ``--benchmark-disable`` (``make test``) the same code runs once on
20,000 tasks, to prove it works, not to measure.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from collections.abc import Iterator

import asyncpg
import pytest

from bench.db import dataset
from bench.registry import Comparison
from lab import settings
from lab.db.explain import QUERIES, explain, without_index
from lab.db.seed import print_progress

SCHEMA = "bench_plans"
TASKS, QUICK_TASKS = 1_000_000, 20_000
USERS = 1_000
ROUNDS = 5
# query → (what it is, the index it should use)
HOT = {
    "get-task": ("get a task by id", "tasks_pkey"),
    "list-pending": ("first page of pending tasks, with total", "tasks_status_created_at_idx"),
    "next-pending": ("next page of pending tasks, by keyset", "tasks_status_created_at_idx"),
    "list-by-user": ("a user's first page, with total", "tasks_user_created_at_idx"),
    "list-by-category": ("a category's first page, with total",
                         "tasks_category_created_at_idx"),
    "search": ("search 'report' across four fields, with total", "tasks_title_trgm_idx"),
    "title-contains": ("titles containing a phrase", "tasks_title_trgm_idx"),
}


def measurement(name: str, side: str) -> str:
    return f"db-plans/{name}/{side}"


COMPARISONS = [
    *(Comparison("db-plans", f"{what} ({name}), ms", measurement(name, f"with {index}"),
                 measurement(name, "without"), f"without {index}")
      for name, (what, index) in HOT.items()),
    Comparison("db-plans", "page 50,000 of 20, ms", measurement("deep-page", "keyset"),
               measurement("deep-page", "offset"), "OFFSET", ("<=", 0.02)),
]


async def execution_ms(conn: asyncpg.Connection, name: str, index: str | None) -> float:
    """One EXPLAIN ANALYZE of query ``name``; with ``index`` dropped if one is named."""
    sql, args = await QUERIES[name](conn)
    if index is None:
        plan = await explain(conn, sql, args, analyze=True)
    else:
        plan = await without_index(conn, index, sql, args, analyze=True)
    assert plan.execution_ms is not None
    return plan.execution_ms


async def measure(url: str, rounds: int, show) -> dict[str, list[float]]:
    """Every round's execution time, by measurement id."""
    conn = await asyncpg.connect(url)
    seen: dict[str, list[float]] = {}
    try:
        for name, (_, index) in HOT.items():
            await execution_ms(conn, name, None)  # warm: the pages this query reads are cached
            with_it, without = measurement(name, f"with {index}"), measurement(name, "without")
            for _ in range(rounds):
                seen.setdefault(with_it, []).append(await execution_ms(conn, name, None))
                seen.setdefault(without, []).append(await execution_ms(conn, name, index))
            show(f"db-plans {name}: {statistics.median(seen[with_it]):,.3f} ms with {index}, "
                 f"{statistics.median(seen[without]):,.3f} ms without")
        for name in ("deep-keyset", "deep-offset"):
            await execution_ms(conn, name, None)
        for _ in range(rounds):
            for name, side in (("deep-keyset", "keyset"), ("deep-offset", "offset")):
                seen.setdefault(measurement("deep-page", side), []).append(
                    await execution_ms(conn, name, None))
        show(f"db-plans page 50,000: keyset "
             f"{statistics.median(seen[measurement('deep-page', 'keyset')]):,.3f} ms, OFFSET "
             f"{statistics.median(seen[measurement('deep-page', 'offset')]):,.3f} ms")
    finally:
        await conn.close()
    return seen


@pytest.fixture
def owner_url(quick, capsys) -> Iterator[str]:
    """Schema bench_plans, seeded; dropped at the end."""
    lab_settings = settings.load()
    owner, app = lab_settings.test_database_owner_url, lab_settings.test_database_url
    with capsys.disabled():
        print(file=sys.stderr)
        asyncio.run(dataset.prepare(owner, app, schema=SCHEMA, users=USERS,
                                    tasks=QUICK_TASKS if quick else TASKS,
                                    progress=print_progress(sys.stderr)))
    try:
        yield dataset.with_search_path(owner, SCHEMA)
    finally:
        asyncio.run(dataset.drop(owner, SCHEMA))


def test_plans_at_a_million_tasks(owner_url, record, quick, capsys):
    def show(line: str) -> None:
        with capsys.disabled():
            print(f"\n{line}", file=sys.stderr, end="")

    seen = asyncio.run(measure(owner_url, 1 if quick else ROUNDS, show))
    expected = {c.lab for c in COMPARISONS} | {c.production for c in COMPARISONS}
    assert set(seen) == expected
    for key, figures in seen.items():
        assert figures and all(f > 0 for f in figures), (key, figures)
        record(key, statistics.median(figures), "ms")
