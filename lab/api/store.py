"""The store interface: what the Task API needs from wherever its data lives.

The handlers in ``users.py``, ``categories.py`` and ``tasks.py`` talk only to
this interface; ``memory.py`` implements it in one process (the embedded
default, no server needed) and challenge 3 adds PostgreSQL behind the same
methods. One behaviour suite (``tests/api/test_store.py``) runs against every
implementation, so they cannot drift apart.

Records come back as plain dicts already shaped like the API's JSON
(camelCase keys, tasks with their ``user`` and ``category`` embedded), so a
handler adds only the envelope. A store never sees a plain-text password: it
is given the hash.

Failures a caller must handle are exceptions named after what happened, not
after HTTP: the API maps them (``DuplicateEmail`` → 409, ``UnknownReference``
→ 400, ``StoreUnavailable`` → 503). A missing row is ``None`` (or ``False``
from a delete), because "not there" is an ordinary answer, not a failure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Record = dict[str, Any]


class StoreError(Exception):
    """Base of the failures a store reports."""


class DuplicateEmail(StoreError):
    def __init__(self, email: str):
        super().__init__(f"email already in use: {email}")
        self.email = email


class UnknownReference(StoreError):
    """A task names a user or category that does not exist."""

    def __init__(self, field: str, value: int):
        super().__init__(f"{field} {value} does not exist")
        self.field = field  # "userId" or "categoryId": the JSON field to blame
        self.value = value


class StoreUnavailable(StoreError):
    """The store cannot answer now (its server is down); try again later."""


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Everything ``GET /tasks`` can ask for. ``after`` switches to keyset paging."""

    status: str | None = None
    user_id: int | None = None
    category_id: int | None = None
    search: str | None = None  # case-insensitive, in title, description, user or category name
    newest_first: bool = True  # sort by creation time, then id
    page: int = 1
    limit: int = 10
    after: tuple[datetime, int] | None = None  # (createdAt, id) of the last task already seen


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Record]
    total: int | None  # None for keyset pages: not counting is what makes them cheap
    has_more: bool  # another page follows; the API then hands out a cursor


class Store(ABC):
    name: str  # "memory", "postgres": shown by /health

    # users: {"id", "name", "email", "createdAt", "updatedAt"}
    @abstractmethod
    async def list_users(self, page: int, limit: int) -> Page: ...
    @abstractmethod
    async def get_user(self, user_id: int) -> Record | None: ...
    @abstractmethod
    async def create_user(self, name: str, email: str, password_hash: str) -> Record: ...
    @abstractmethod
    async def update_user(self, user_id: int, changes: dict[str, Any]) -> Record | None: ...
    @abstractmethod
    async def delete_user(self, user_id: int) -> bool: ...

    # categories: {"id", "name", "createdAt"}
    @abstractmethod
    async def list_categories(self, page: int, limit: int) -> Page: ...
    @abstractmethod
    async def get_category(self, category_id: int) -> Record | None: ...
    @abstractmethod
    async def create_category(self, name: str) -> Record: ...
    @abstractmethod
    async def update_category(self, category_id: int, changes: dict[str, Any]) -> Record | None: ...
    @abstractmethod
    async def delete_category(self, category_id: int) -> bool: ...

    # tasks: {"id", "title", "description", "status", "userId", "categoryId",
    #         "user": {"id", "name", "email"} | None, "category": {"id", "name"} | None,
    #         "createdAt", "updatedAt"}
    @abstractmethod
    async def list_tasks(self, query: TaskQuery) -> Page: ...
    @abstractmethod
    async def get_task(self, task_id: int) -> Record | None: ...
    @abstractmethod
    async def create_task(self, fields: dict[str, Any]) -> Record: ...
    @abstractmethod
    async def update_task(self, task_id: int, changes: dict[str, Any]) -> Record | None: ...
    @abstractmethod
    async def delete_task(self, task_id: int) -> bool: ...

    @abstractmethod
    async def check(self) -> None:
        """Raise StoreUnavailable if the store cannot answer (for /health)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
