"""``seed``: deterministic, realistic, loaded whole or not at all; the CLI's progress and errors."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from lab.db import seed
from lab.db.migrator import migrate
from tests.db.conftest import with_search_path


def test_the_same_seed_makes_the_same_rows():
    def sample(value):
        rng = random.Random(value)
        return list(seed.tasks(rng, 500, user_count=20, category_count=5))
    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_tasks_are_shaped_like_real_ones():
    rows = list(seed.tasks(random.Random(1), 20_000, user_count=100, category_count=12))
    created = [row[5] for row in rows]
    assert created == sorted(created)  # creation time grows with the id
    share = {status: sum(row[2] == status for row in rows) / len(rows)
             for status, _ in seed.STATUSES}
    assert share["completed"] > share["pending"] > share["in-progress"] > 0.1
    owners = [row[3] for row in rows]
    assert owners.count(1) > 10 * owners.count(100)  # a few busy users own many tasks
    assert 0.05 < sum(row[4] is None for row in rows) / len(rows) < 0.15
    assert all(1 <= row[3] <= 100 and (row[4] is None or 1 <= row[4] <= 12) for row in rows)


async def test_seed_replaces_the_data_and_analyzes(owner):
    await migrate(owner)
    await owner.execute("INSERT INTO categories (name) VALUES ('old')")
    seen = []
    counts = await seed.seed(owner, user_count=30, category_count=5, task_count=3_000,
                             progress=lambda table, done, total: seen.append((table, done)))
    assert counts == {"users": 30, "categories": 5, "tasks": 3_000}
    assert await owner.fetchval("SELECT count(*) FROM categories") == 5  # 'old' is gone
    assert await owner.fetchval("SELECT min(id) FROM categories") == 1  # identity restarted
    assert await owner.fetchval(
        "SELECT count(*) FROM tasks t JOIN users u ON u.id = t.user_id") == 3_000
    assert ("tasks", 3_000) in seen
    analyzed = await owner.fetchval(
        "SELECT reltuples FROM pg_class WHERE oid = 'tasks'::regclass")
    assert analyzed == 3_000  # ANALYZE ran: the planner knows the size


async def test_a_failed_seed_keeps_the_old_data(owner):
    await migrate(owner)
    await owner.execute("INSERT INTO categories (name) VALUES ('kept')")
    with pytest.raises(ValueError):
        await seed.seed(owner, user_count=0, category_count=5, task_count=10)
    # and a failure half-way through COPY rolls back the TRUNCATE too
    await owner.execute("ALTER TABLE tasks ADD CONSTRAINT no_tasks CHECK (false)")
    with pytest.raises(Exception, match="no_tasks"):
        await seed.seed(owner, user_count=3, category_count=2, task_count=10)
    assert await owner.fetch("SELECT name FROM categories") == [("kept",)]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.db", *args], capture_output=True,
                          text=True, timeout=120)


async def test_the_cli_seeds_with_progress_and_says_when_to_migrate(owner_url, schema):
    url = with_search_path(owner_url, schema)
    refused = run_cli("--database-url", url, "seed", "--tasks", "10")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "run 'python -m lab.db migrate' first" in refused.stderr
    assert run_cli("--database-url", url, "migrate").returncode == 0
    done = run_cli("--database-url", url, "seed", "--users", "10", "--categories", "3",
                   "--tasks", "120000", "--seed", "5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("seeded 10 users, 3 categories and 120,000 tasks in ")
    assert "tasks         120,000 / 120,000 (100%)" in done.stderr


@pytest.mark.parametrize("args", [["seed", "--tasks", "many"], ["seed", "--users", "0"]])
def test_bad_seed_flags_are_one_line(args):
    result = run_cli(*args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
