"""The data every HTTP benchmark server holds: the same users, categories and tasks.

100 users, 10 categories and 10,000 tasks, made in a fixed order so that task
1234 is the same task on the lab's server and on every twin: its title, its
user, its category, its status and even its timestamps. Statuses, users and
categories are handed out in turn (task *i* gets status ``i % 3``, user
``i % 100``, category ``i % 10``), so ``?status=pending`` matches a third of
the tasks and every user owns a hundred.

Every user gets the same precomputed password hash: hashing 100 passwords with
scrypt would add seconds to every server start and measure nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lab.api.memory import MemoryStore
from lab.api.schemas import STATUSES
from lab.api.store import Store

USERS = 100
CATEGORIES = 10
TASKS = 10_000
# PasswordHasher().hash("correct horse battery staple"), computed once.
PASSWORD_HASH = ("scrypt$16384$8$1$V2XDoX8WafkF1RQWXT1UUA==$"
                 "SeEvhf4dx1E+ZT0B80LagNk/B6oFdvguE5GdrKc0cmM=")
CATEGORY_NAMES = ("Work", "Home", "Errands", "Health", "Finance",
                  "Learning", "Travel", "Garden", "Family", "Projects")
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)  # the first seeded record's createdAt


async def seed(store: Store) -> None:
    """Fill an empty store; raises ValueError if it already holds data."""
    assert len(CATEGORY_NAMES) == CATEGORIES
    if (await store.list_users(1, 1)).total:  # ids would not line up with the other servers'
        raise ValueError("seed needs an empty store")
    for n in range(1, USERS + 1):
        await store.create_user(f"User {n:03d}", f"user{n:03d}@example.com", PASSWORD_HASH)
    for name in CATEGORY_NAMES:
        await store.create_category(name)
    for i in range(TASKS):
        await store.create_task({
            "title": f"Task {i + 1}: {CATEGORY_NAMES[i % CATEGORIES].lower()} item",
            "description": f"Seeded task number {i + 1}, for the HTTP benchmarks.",
            "status": STATUSES[i % len(STATUSES)],
            "userId": i % USERS + 1,
            "categoryId": i % CATEGORIES + 1,
        })


class SeedClock:
    """One second per record from ``EPOCH`` while seeding, then the real time.

    With it, two stores seeded in two processes hold byte-identical records,
    timestamps included; tasks created later get real timestamps, which come
    after every seeded one (the store never lets time go backwards anyway).
    """

    def __init__(self) -> None:
        self.ticks = 0
        self.seeding = True

    def __call__(self) -> datetime:
        if not self.seeding:
            return datetime.now(UTC)
        self.ticks += 1
        return EPOCH + timedelta(seconds=self.ticks)

    def __repr__(self) -> str:
        return f"<SeedClock ticks={self.ticks} seeding={self.seeding}>"


async def seeded_store() -> MemoryStore:
    """A fresh MemoryStore holding the benchmark data, with deterministic timestamps."""
    clock = SeedClock()
    store = MemoryStore(clock=clock)
    await seed(store)
    clock.seeding = False
    return store
