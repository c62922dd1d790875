"""Realistic, deterministic data, loaded with COPY: ``python -m lab.db seed``.

The same ``--seed`` gives the same rows, so a plan or a benchmark can be
reproduced. The data is shaped like a real task list, because plans depend
on shape: statuses are skewed (most tasks are done), a few busy users own
many tasks (a Zipf-like draw), one task in ten has no category, titles come
from a vocabulary (so ``search=report`` matches a realistic fraction), and
``created_at`` grows with the id over two years, as it does when rows are
inserted over time.

Why COPY: one ``INSERT`` per row is a round trip per row; ``COPY ... FROM
STDIN`` (asyncpg's ``copy_records_to_table``, binary format) streams rows in
one command, which is what lets a million tasks load in seconds. The tables are
emptied first (``TRUNCATE ... RESTART IDENTITY``), so ids run from 1 in the
order rows are sent, and ``VACUUM (ANALYZE)`` afterwards gives the planner
statistics for the new data and marks its pages all-visible (so counting by
an index needs no visit to the table).

Every user gets the same password hash (of ``password``): hashing a million
times with scrypt would take hours, which is its point.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg

from lab.api.passwords import PasswordHasher

FIRST = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Frances",
         "John", "Radia", "Tim", "Katherine", "Dennis", "Hedy", "Linus", "Annie", "Guido")
LAST = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson",
        "Allen", "McCarthy", "Perlman", "Berners-Lee", "Johnson", "Ritchie", "Lamarr", "Easley")
CATEGORIES = ("Work", "Home", "Health", "Finance", "Errands", "Learning", "Travel", "Garden",
              "Family", "Hobbies", "Car", "Admin")
VERBS = ("Write", "Review", "Plan", "Call", "Fix", "Book", "Prepare", "Send", "Update", "Clean",
         "Buy", "Read", "Schedule", "Pay", "Draft", "Check")
OBJECTS = ("the report", "the budget", "the dentist", "the slides", "the roof", "flights",
           "the tax return", "groceries", "the newsletter", "the contract", "the garage",
           "a birthday present", "the backlog", "the invoice", "the release notes", "the plumber")
STATUSES = (("completed", 0.6), ("pending", 0.25), ("in-progress", 0.15))
START = datetime(2024, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=730)
CHUNK = 50_000  # rows per progress step

Progress = Callable[[str, int, int], None]  # (table, rows done, rows in all)


def users(rng: random.Random, count: int, password_hash: str) -> Iterator[tuple]:
    for n in range(1, count + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}.{n}@example.com"
        created = START + SPAN * (n / (count + 1)) / 2  # users arrive in the first year
        yield (f"{first} {last}", email, password_hash, created, created)


def categories(count: int) -> Iterator[tuple]:
    for n in range(count):
        name = CATEGORIES[n % len(CATEGORIES)]
        yield (name if n < len(CATEGORIES) else f"{name} {n // len(CATEGORIES) + 1}",
               START + timedelta(minutes=n))


def tasks(rng: random.Random, count: int, user_count: int,
          category_count: int) -> Iterator[tuple]:
    statuses, weights = zip(*STATUSES, strict=True)
    # Zipf-like owners: user k is drawn with weight 1/k, so a few users own many tasks.
    owner_weights = list(itertools.accumulate(1 / k for k in range(1, user_count + 1)))
    step = SPAN / max(count, 1)
    for n in range(count):
        created = START + step * n + timedelta(seconds=rng.random())  # grows with the id
        updated = created + timedelta(hours=rng.random() * 72)
        title = f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        description = "" if rng.random() < 0.4 else f"{title}, before {updated:%A}."
        user_id = rng.choices(range(1, user_count + 1), cum_weights=owner_weights)[0]
        category_id = None if rng.random() < 0.1 else rng.randint(1, category_count)
        yield (title, description, rng.choices(statuses, weights)[0], user_id, category_id,
               created, updated)


async def seed(conn: asyncpg.Connection, *, user_count: int, category_count: int,
               task_count: int, seed_value: int = 1,
               progress: Progress = lambda table, done, total: None) -> dict[str, int]:
    """Replace every user, category and task with generated ones; returns the row counts."""
    if min(user_count, category_count) < 1 or task_count < 0:
        raise ValueError("seed needs at least one user and one category")
    rng = random.Random(seed_value)
    password_hash = PasswordHasher(n=2**14).hash("password")
    async with conn.transaction():  # all of it, or none of it
        await conn.execute("TRUNCATE tasks, categories, users RESTART IDENTITY CASCADE")
        await _copy(conn, "users", ("name", "email", "password_hash", "created_at",
                                    "updated_at"),
                    users(rng, user_count, password_hash), user_count, progress)
        await _copy(conn, "categories", ("name", "created_at"), categories(category_count),
                    category_count, progress)
        await _copy(conn, "tasks", ("title", "description", "status", "user_id", "category_id",
                                    "created_at", "updated_at"),
                    tasks(rng, task_count, user_count, category_count), task_count, progress)
    # ANALYZE: statistics for the planner. VACUUM: the visibility map, without which an
    # index-only scan (the list's count) must still visit the table for every row.
    await conn.execute("VACUUM (ANALYZE) users, categories, tasks")
    return {"users": user_count, "categories": category_count, "tasks": task_count}


async def _copy(conn: asyncpg.Connection, table: str, columns: tuple[str, ...],
                rows: Iterator[tuple], total: int, progress: Progress) -> None:
    done = 0
    progress(table, 0, total)
    while chunk := list(itertools.islice(rows, CHUNK)):
        await conn.copy_records_to_table(table, records=chunk, columns=columns)
        done += len(chunk)
        progress(table, done, total)


def print_progress(out) -> Progress:
    """A one-line progress display on ``out``, redrawn in place on a terminal."""
    started = time.perf_counter()
    live = out.isatty()

    def show(table: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        line = (f"{table:<10} {done:>10,} / {total:,} ({percent:3d}%) "
                f"{time.perf_counter() - started:6.1f} s")
        if live:
            out.write("\r" + line + ("\n" if done == total else ""))
        elif done == total or done % (CHUNK * 4) == 0:
            out.write(line + "\n")
        out.flush()

    return show
