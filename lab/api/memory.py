"""The embedded store: users, categories and tasks in this process's memory.

The default store, needing no server: ``python -m lab.api --store memory``.
Data lives as long as the process. It keeps the rules PostgreSQL will keep in
challenge 3, so the API behaves the same on both:

* ids count up from 1 per table and are never reused;
* an email is unique compared case-insensitively (an index of lower-cased
  emails, as a unique index on ``lower(email)`` is in PostgreSQL);
* a task's ``userId``/``categoryId`` must exist (a foreign key), and deleting
  a user or category sets the link on its tasks to null (``ON DELETE SET NULL``);
* ``createdAt`` never goes backwards, so creation order and id order agree and
  a keyset cursor ``(createdAt, id)`` can be followed by id alone.

Listing tasks uses secondary indexes, as a database would: the ids of the
tasks with each status, each user and each category, every one a sorted list
(``bisect`` keeps it sorted; a B-tree does this in PostgreSQL). A list
filtered by one of them walks only that index, from either end, and its total
is the index's length; more filters (or a search) walk the smallest index and
test the rest. A keyset cursor is a binary search into the index, so every
keyset page costs the same however deep it is; an offset page walks past the
skipped ids, as SQL's ``OFFSET`` does. Records are rebuilt on
every read, with the user's and category's current names, so no caller can
change the store by changing what it was given.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from lab.api.store import DuplicateEmail, Page, Record, Store, TaskQuery, UnknownReference

INDEXED = ("status", "userId", "categoryId")  # the fields GET /tasks filters by


def utc_now() -> datetime:
    return datetime.now(UTC)


class MemoryStore(Store):
    name = "memory"

    def __init__(self, clock: Callable[[], datetime] = utc_now):
        self._clock = clock
        self._last_time = datetime.min.replace(tzinfo=UTC)
        self._next_id = {"users": 1, "categories": 1, "tasks": 1}
        self._users: dict[int, dict[str, Any]] = {}
        self._emails: dict[str, int] = {}  # lower-cased email → user id
        self._categories: dict[int, dict[str, Any]] = {}
        self._tasks: dict[int, dict[str, Any]] = {}
        self._ids: list[int] = []  # every task id, ascending: creation order
        # field → value → the ids of the tasks with that value, ascending
        self._index: dict[str, dict[Any, list[int]]] = {field: {} for field in INDEXED}

    def __repr__(self) -> str:
        return (f"<MemoryStore users={len(self._users)} categories={len(self._categories)} "
                f"tasks={len(self._tasks)}>")

    async def check(self) -> None:
        """Always able to answer: the data is in this process."""

    async def close(self) -> None:
        """Nothing to release; the data goes with the process."""

    def _now(self) -> datetime:
        self._last_time = max(self._clock(), self._last_time)  # never backwards
        return self._last_time

    def _new_id(self, table: str) -> int:
        new_id = self._next_id[table]
        self._next_id[table] = new_id + 1
        return new_id

    # users -------------------------------------------------------------------
    async def list_users(self, page: int, limit: int) -> Page:
        return _page([_user(u) for u in _slice(self._users.values(), page, limit)],
                     len(self._users), page, limit)

    async def get_user(self, user_id: int) -> Record | None:
        user = self._users.get(user_id)
        return None if user is None else _user(user)

    async def create_user(self, name: str, email: str, password_hash: str) -> Record:
        self._claim_email(email, None)
        now = self._now()
        user = {"id": self._new_id("users"), "name": name, "email": email,
                "passwordHash": password_hash, "createdAt": now, "updatedAt": now}
        self._users[user["id"]] = user
        self._emails[email.lower()] = user["id"]
        return _user(user)

    async def update_user(self, user_id: int, changes: dict[str, Any]) -> Record | None:
        user = self._users.get(user_id)
        if user is None:
            return None
        if "email" in changes:
            self._claim_email(changes["email"], user_id)
            del self._emails[user["email"].lower()]
            self._emails[changes["email"].lower()] = user_id
        user.update(changes, updatedAt=self._now())
        return _user(user)

    async def delete_user(self, user_id: int) -> bool:
        user = self._users.pop(user_id, None)
        if user is None:
            return False
        del self._emails[user["email"].lower()]
        for task_id in self._index["userId"].pop(user_id, []):
            self._tasks[task_id]["userId"] = None  # ON DELETE SET NULL
        return True

    def _claim_email(self, email: str, owner: int | None) -> None:
        holder = self._emails.get(email.lower())
        if holder is not None and holder != owner:
            raise DuplicateEmail(email)

    # categories --------------------------------------------------------------
    async def list_categories(self, page: int, limit: int) -> Page:
        return _page([_category(c) for c in _slice(self._categories.values(), page, limit)],
                     len(self._categories), page, limit)

    async def get_category(self, category_id: int) -> Record | None:
        category = self._categories.get(category_id)
        return None if category is None else _category(category)

    async def create_category(self, name: str) -> Record:
        category = {"id": self._new_id("categories"), "name": name, "createdAt": self._now()}
        self._categories[category["id"]] = category
        return _category(category)

    async def update_category(self, category_id: int, changes: dict[str, Any]) -> Record | None:
        category = self._categories.get(category_id)
        if category is None:
            return None
        category.update(changes)
        return _category(category)

    async def delete_category(self, category_id: int) -> bool:
        if self._categories.pop(category_id, None) is None:
            return False
        for task_id in self._index["categoryId"].pop(category_id, []):
            self._tasks[task_id]["categoryId"] = None  # ON DELETE SET NULL
        return True

    # tasks -------------------------------------------------------------------
    async def get_task(self, task_id: int) -> Record | None:
        task = self._tasks.get(task_id)
        return None if task is None else self._task(task)

    async def create_task(self, fields: dict[str, Any]) -> Record:
        self._check_references(fields)
        now = self._now()
        task = {"id": self._new_id("tasks"), "title": fields["title"],
                "description": fields.get("description", ""),
                "status": fields.get("status", "pending"), "userId": fields["userId"],
                "categoryId": fields.get("categoryId"), "createdAt": now, "updatedAt": now}
        self._tasks[task["id"]] = task
        self._ids.append(task["id"])  # ids only grow, so the list stays sorted
        self._add_to_indexes(task, INDEXED)
        return self._task(task)

    async def update_task(self, task_id: int, changes: dict[str, Any]) -> Record | None:
        task = self._tasks.get(task_id)
        if task is None:
            return None
        self._check_references(changes)
        moved = [field for field in INDEXED if field in changes and changes[field] != task[field]]
        self._remove_from_indexes(task, moved)
        task.update(changes, updatedAt=self._now())
        self._add_to_indexes(task, moved)
        return self._task(task)

    async def delete_task(self, task_id: int) -> bool:
        task = self._tasks.pop(task_id, None)
        if task is None:
            return False
        del self._ids[bisect_left(self._ids, task_id)]
        self._remove_from_indexes(task, INDEXED)
        return True

    async def list_tasks(self, query: TaskQuery) -> Page:
        candidates, tests = self._plan(query)
        after = None if query.after is None else query.after[1]
        ordered = _walk(candidates, query.newest_first, after)
        if tests:
            tasks = self._tasks
            ordered = (i for i in ordered if all(test(tasks[i]) for test in tests))
        if after is not None:  # keyset: one page past the cursor, one more to know if it ends
            ids = list(islice(ordered, query.limit + 1))
            return Page([self._task(self._tasks[i]) for i in ids[:query.limit]], None,
                        len(ids) > query.limit)
        if tests:
            matching = list(ordered)
            total, ids = len(matching), matching[(query.page - 1) * query.limit:][:query.limit]
        else:  # one index answers the filter: its length is the total, no scan
            total, ids = len(candidates), list(_slice(ordered, query.page, query.limit))
        return _page([self._task(self._tasks[i]) for i in ids], total, query.page, query.limit)

    def _plan(self, query: TaskQuery) -> tuple[list[int], list[Callable[[dict], bool]]]:
        """The smallest index that covers a filter, and tests for the other filters."""
        wanted = {"status": query.status, "userId": query.user_id,
                  "categoryId": query.category_id}
        options = sorted(((self._index[field].get(value, []), field, value)
                          for field, value in wanted.items() if value is not None),
                         key=lambda option: len(option[0]))
        candidates = options[0][0] if options else self._ids
        tests = [_equals(field, value) for _, field, value in options[1:]]
        if query.search:
            tests.append(self._matches(query.search.casefold()))
        return candidates, tests

    def _matches(self, needle: str) -> Callable[[dict], bool]:
        def test(task: dict) -> bool:
            user = self._users.get(task["userId"]) if task["userId"] else None
            category = self._categories.get(task["categoryId"]) if task["categoryId"] else None
            return any(needle in text.casefold() for text in (
                task["title"], task["description"],
                user["name"] if user else "", category["name"] if category else ""))
        return test

    def _check_references(self, fields: dict[str, Any]) -> None:
        if "userId" in fields and fields["userId"] not in self._users:
            raise UnknownReference("userId", fields["userId"])
        category_id = fields.get("categoryId")
        if category_id is not None and category_id not in self._categories:
            raise UnknownReference("categoryId", category_id)

    def _add_to_indexes(self, task: dict[str, Any], fields: Iterable[str]) -> None:
        for field in fields:
            if task[field] is not None:
                insort(self._index[field].setdefault(task[field], []), task["id"])

    def _remove_from_indexes(self, task: dict[str, Any], fields: Iterable[str]) -> None:
        for field in fields:
            if task[field] is not None:
                ids = self._index[field][task[field]]
                del ids[bisect_left(ids, task["id"])]

    def _task(self, task: dict[str, Any]) -> Record:
        """The API's view of a task: a fresh dict with its user and category embedded."""
        user = self._users.get(task["userId"]) if task["userId"] is not None else None
        category = (self._categories.get(task["categoryId"])
                    if task["categoryId"] is not None else None)
        return {**task,
                "user": None if user is None else
                {"id": user["id"], "name": user["name"], "email": user["email"]},
                "category": None if category is None else
                {"id": category["id"], "name": category["name"]}}


def _walk(ids: list[int], newest_first: bool, after: int | None) -> Iterator[int]:
    """The ids in list order, starting strictly past ``after`` (found by binary search)."""
    if newest_first:
        stop = len(ids) if after is None else bisect_left(ids, after)
        return (ids[k] for k in range(stop - 1, -1, -1))
    start = 0 if after is None else bisect_right(ids, after)
    return (ids[k] for k in range(start, len(ids)))


def _user(user: dict[str, Any]) -> Record:
    """Every field but the password hash, which never leaves the store."""
    return {"id": user["id"], "name": user["name"], "email": user["email"],
            "createdAt": user["createdAt"], "updatedAt": user["updatedAt"]}


def _category(category: dict[str, Any]) -> Record:
    return dict(category)


def _equals(key: str, value: Any) -> Callable[[dict], bool]:
    return lambda task: task[key] == value


def _slice(items: Iterable[Any], page: int, limit: int) -> Iterable[Any]:
    start = (page - 1) * limit
    return islice(items, start, start + limit)


def _page(items: list[Record], total: int, page: int, limit: int) -> Page:
    return Page(items, total, page * limit < total)
