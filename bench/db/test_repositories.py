"""The lab's raw-SQL repository against the SQLAlchemy 2 async ORM, on one database.

Both sides read and write the same rows of schema ``bench_db`` in
``lab_test`` (``dataset.py``: 200 users, 12 categories, 100,000 tasks), as
``lab_app``, through asyncpg, with at most 10 pooled connections, on one
uvloop event loop in this process:

* lab: ``lab.db.store.PostgresStore`` -- one query per call;
* orm: ``orm.OrmTaskRepository`` -- models, ``AsyncSession``, ``joinedload``,
  set up as SQLAlchemy's users do (its docstring says how, and why).

Four operations: get a task by id (ids drawn at random, the same ones on both
sides), the first page of 20 pending tasks, newest first, with the total
(a quarter of the tasks; the same total all run long), create a task, and set a
task's status. Each is driven by one caller at a time in a loop and by 20
concurrent callers (20 loops, twice the pool), for a fixed time; the figure is
operations per second. Rounds alternate lab, orm, lab, orm ... and the median
of three counts, so a burst of noise on a shared machine hits both alike.

Like for like: both sides write each created or updated task's event into
the outbox in the same transaction (the lab in the same statement, the ORM in
the same commit). Before timing, each test checks that both sides answer the same
inputs with the same records (the same dict for a task; the same page and
total; a created or updated task equal to the row as it is now stored).
Writes keep the list's answer fixed: created tasks are ``in-progress``, and an
update flips a seeded non-pending task between ``in-progress`` and
``completed`` -- always to the other value, because the ORM sends no UPDATE
for an attribute set to the value it already holds.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvloop

from bench.db import dataset
from bench.db.orm import OrmTaskRepository
from bench.registry import Comparison
from lab import settings
from lab.api.store import TaskQuery
from lab.db.store import PostgresStore

ROUNDS = 3
SECONDS = 1.5  # per side, per operation, per round
QUICK_SECONDS = 0.01  # --benchmark-disable: each caller still makes at least one call
CALLERS = (1, 20)
PRODUCTION = "SQLAlchemy 2 ORM (asyncpg)"
# slug → (operation, target from the issue: lab/orm ops/s must be ≥)
OPERATIONS = {
    "get-task": ("get task by id", 3.0),
    "list-tasks": ("list page with total", 2.0),
    "create-task": ("create task", 2.0),
    "update-task": ("update task", None),
}
LIST_STATUS, LIST_LIMIT = "pending", 20
NEW_TASK = {"title": "Benchmark task", "description": "Created by bench/db.",
            "status": "in-progress", "userId": 42, "categoryId": 3}
UPDATE_TARGETS = 4_000  # seeded non-pending tasks whose status the updates flip

Call = Callable[[int, int], Awaitable[Any]]  # (caller, n-th call of that caller)


def measurement(slug: str, callers: int, side: str) -> str:
    return f"db/{slug}/c{callers}/{side}"


def _rows() -> list[Comparison]:
    rows = []
    for slug, (operation, target) in OPERATIONS.items():
        for callers in CALLERS:
            rows.append(Comparison(
                "db", f"{operation} ops/s, {callers} caller{'s' if callers > 1 else ''}",
                measurement(slug, callers, "lab"), measurement(slug, callers, "orm"),
                PRODUCTION, None if target is None else (">=", target)))
    return rows


COMPARISONS = _rows()


class Inputs:
    """What the calls ask for: the same sequence on both sides."""

    def __init__(self, statuses: dict[int, str]):
        self.task_ids: dict[int, list[int]] = {}  # caller → ids to get, drawn once
        self.status = dict(statuses)  # update target → its status now
        self.targets = sorted(statuses)

    def __repr__(self) -> str:
        return f"<Inputs {len(self.targets)} update targets>"

    def task_id(self, caller: int, n: int) -> int:
        ids = self.task_ids.get(caller)
        if ids is None:
            rng = random.Random(caller)
            ids = self.task_ids[caller] = [rng.randint(1, dataset.TASKS) for _ in range(4096)]
        return ids[n % len(ids)]

    def flip(self, caller: int, callers: int, n: int) -> tuple[int, dict[str, str]]:
        """A task and its new status. Callers take disjoint targets, so no two calls in
        flight touch one row, and the status tracked here is the row's."""
        mine = range(caller, len(self.targets), callers)  # indexes, not a copied slice
        task_id = self.targets[mine[n % len(mine)]]
        new = "completed" if self.status[task_id] == "in-progress" else "in-progress"
        self.status[task_id] = new  # before the await: the next call on it flips it back
        return task_id, {"status": new}


def make_call(slug: str, side: str, repo: Any, inputs: Inputs, callers: int) -> Call:
    if slug == "get-task":
        return lambda caller, n: repo.get_task(inputs.task_id(caller, n))
    if slug == "list-tasks":
        if side == "lab":
            query = TaskQuery(status=LIST_STATUS, limit=LIST_LIMIT)
            return lambda caller, n: repo.list_tasks(query)
        return lambda caller, n: repo.list_tasks(status=LIST_STATUS, limit=LIST_LIMIT)
    if slug == "create-task":
        return lambda caller, n: repo.create_task(NEW_TASK)
    assert slug == "update-task", slug
    return lambda caller, n: repo.update_task(*inputs.flip(caller, callers, n))


async def ops_per_second(call: Call, callers: int, seconds: float) -> float:
    """``callers`` loops calling ``call`` until ``seconds`` have passed; calls per second."""
    started = time.perf_counter()
    deadline = started + seconds

    async def loop(caller: int) -> int:
        n = 0
        while True:  # at least one call, however short the time
            await call(caller, n)
            n += 1
            if time.perf_counter() >= deadline:
                return n

    async with asyncio.TaskGroup() as group:  # one failing caller cancels the others
        loops = [group.create_task(loop(caller)) for caller in range(callers)]
    return sum(task.result() for task in loops) / (time.perf_counter() - started)


async def check_same_results(slug: str, lab: PostgresStore, orm: OrmTaskRepository,
                             inputs: Inputs) -> None:
    """Both sides answer the same inputs alike; a write answers the row as now stored."""
    if slug == "get-task":
        for n in range(50):
            task_id = inputs.task_id(0, n)
            assert await lab.get_task(task_id) == await orm.get_task(task_id), task_id
        assert await lab.get_task(10**9) is None and await orm.get_task(10**9) is None
    elif slug == "list-tasks":
        ours = await lab.list_tasks(TaskQuery(status=LIST_STATUS, limit=LIST_LIMIT))
        theirs = await orm.list_tasks(status=LIST_STATUS, limit=LIST_LIMIT)
        assert [t["id"] for t in ours.items] == [t["id"] for t in theirs.items]
        assert ours.items == theirs.items and len(ours.items) == LIST_LIMIT
        assert ours.total == theirs.total > LIST_LIMIT and ours.has_more == theirs.has_more
    elif slug == "create-task":
        ours, theirs = await lab.create_task(NEW_TASK), await orm.create_task(NEW_TASK)
        assert ours == await lab.get_task(ours["id"])
        assert theirs == await lab.get_task(theirs["id"])
        changing = ("id", "createdAt", "updatedAt")
        assert ({k: v for k, v in ours.items() if k not in changing}
                == {k: v for k, v in theirs.items() if k not in changing})
    else:
        for repo in (lab, orm):  # the same row, updated by each side in turn
            task_id, changes = inputs.flip(0, 1, 0)
            updated = await repo.update_task(task_id, changes)
            assert updated == await lab.get_task(task_id), repo
            assert updated["status"] == changes["status"]


async def measure(slug: str, inputs: Inputs, rounds: int, seconds: float,
                  show: Callable[[str], None]) -> dict[tuple[int, str], list[float]]:
    """Every round's ops/s, by (callers, side), after checking and warming both sides."""
    app_url = settings.load().test_database_url
    lab = await PostgresStore.connect(dataset.with_search_path(app_url))
    orm = OrmTaskRepository.connect(app_url, search_path=dataset.SCHEMA)
    sides = {"lab": lab, "orm": orm}
    try:
        await check_same_results(slug, lab, orm, inputs)
        calls = {(callers, side): make_call(slug, side, repo, inputs, callers)
                 for callers in CALLERS for side, repo in sides.items()}
        for side in sides:  # warm-up: open every pooled connection, prepare the statements
            await ops_per_second(calls[max(CALLERS), side], max(CALLERS), seconds / 10)
        seen: dict[tuple[int, str], list[float]] = {key: [] for key in calls}
        for round_no in range(1, rounds + 1):
            for callers in CALLERS:
                for side in sides:  # interleaved: lab, orm, lab, orm ...
                    seen[callers, side].append(
                        await ops_per_second(calls[callers, side], callers, seconds))
                lab_ops, orm_ops = seen[callers, "lab"][-1], seen[callers, "orm"][-1]
                show(f"db round {round_no}/{rounds} {OPERATIONS[slug][0]}, {callers} "
                     f"caller(s): ops/s lab {lab_ops:,.1f}, orm {orm_ops:,.1f} "
                     f"(lab/orm {lab_ops / orm_ops:.2f}×)")
        return seen
    finally:
        await lab.close()
        await orm.close()


@pytest.fixture(scope="module")
def inputs() -> Iterator[Inputs]:
    """Schema bench_db, seeded; dropped at the end. Its own event loop: nothing outlives it."""
    lab_settings = settings.load()
    owner_url, app_url = lab_settings.test_database_owner_url, lab_settings.test_database_url
    asyncio.run(dataset.prepare(owner_url, app_url))
    try:
        yield Inputs(asyncio.run(dataset.statuses(app_url, UPDATE_TARGETS)))
    finally:
        asyncio.run(dataset.drop(owner_url))


@pytest.mark.parametrize("slug", OPERATIONS)
def test_repository_throughput(slug, inputs, record, quick, capsys):
    rounds, seconds = (1, QUICK_SECONDS) if quick else (ROUNDS, SECONDS)

    def show(line: str) -> None:
        with capsys.disabled():  # progress, shown even while pytest captures output
            print(f"\n{line}", file=sys.stderr, end="")

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # as the API runs
        seen = runner.run(measure(slug, inputs, rounds, seconds, show))
    for (callers, side), figures in seen.items():
        assert len(figures) == rounds and all(f > 0 for f in figures), (callers, side, figures)
        record(measurement(slug, callers, side), statistics.median(figures), "ops/s")
