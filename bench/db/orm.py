"""The lab's task repository operations, written the way a SQLAlchemy 2 user would.

The comparison side of ``test_repositories.py``: the same four operations as
``lab.db.store.PostgresStore`` -- get a task by id, a filtered page with its
total, create, update -- answering the same records (camelCase, the task's
``user`` {id, name, email} and ``category`` {id, name} embedded), on the same
asyncpg driver, the same tables and the same rows.

It is set up as SQLAlchemy's documentation and its users set it up, with no
straw man and no tuning either way:

* **Declarative models mapped onto the existing tables** (``users``,
  ``categories``, ``tasks``); the lab's migration made them, nothing here
  creates or alters a table. Columns the database fills are marked as such
  (``server_default``; ``server_onupdate=FetchedValue()`` for ``updated_at``,
  which a trigger moves), and ``Task`` has ``eager_defaults=True``, which the
  asyncio docs recommend so that an INSERT or UPDATE brings them back with
  ``RETURNING`` instead of a lazy load, which ``AsyncSession`` cannot do.
* **``create_async_engine("postgresql+asyncpg://...")``** with the pool sized
  like the lab's (at most 10 connections: ``pool_size=10, max_overflow=0``)
  and every other default: the dialect's prepared-statement cache (100 per
  connection), the compiled-SQL cache, rollback when a connection is returned.
* **``async_sessionmaker(expire_on_commit=False)``** and one session per
  operation, as in a web request. A session runs in a transaction, so a read
  is BEGIN, SELECT, ROLLBACK on the wire: three round trips where the lab's
  pool makes one. That is the default cost of a Unit of Work, not a mistake.
* **Relationships loaded with ``joinedload``**, what SQLAlchemy's docs suggest
  for a many-to-one: the task, its user and its category in one SELECT with
  two LEFT OUTER JOINs, like the lab's query.

Per operation, on the wire:

* get by id: ``session.get(Task, id, options=[joinedload ...])`` -- one SELECT;
* list page with total: **two statements** in one session, the page (a
  SELECT with the joins, ORDER BY, LIMIT/OFFSET) and ``select(func.count())``
  over the same filter, as ORM users count; the lab gets both in one query
  with ``count(*) OVER ()``;
* create: ``add``, ``commit`` (INSERT ... RETURNING id and the defaults), then
  a refresh for the embedded user and category, in a new transaction -- one
  SELECT with the joins (``populate_existing``; see ``_refresh``);
* update: ``get`` with the joins, set the attributes, ``commit`` (UPDATE ...
  RETURNING updated_at).

Not here: the API's search and keyset pages, and the mapping of constraint
violations to the API's errors -- the benchmark does not exercise them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, FetchedValue, ForeignKey, Identity, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship

from lab.api.store import Page, Record

POOL_SIZE = 10  # as lab.db.pool.MAX_SIZE: at most 10 connections, on each side


class Base(DeclarativeBase):
    # Python's datetime is PostgreSQL's timestamptz in every model.
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Identity(always=True), primary_key=True)
    email: Mapped[str]
    name: Mapped[str]
    password_hash: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(),
                                                 server_onupdate=FetchedValue())


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Identity(always=True), primary_key=True)
    name: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Task(Base):
    __tablename__ = "tasks"
    # Fetch what the database fills in (timestamps) with RETURNING on INSERT and UPDATE.
    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(Identity(always=True), primary_key=True)
    title: Mapped[str]
    description: Mapped[str] = mapped_column(default="")
    status: Mapped[str] = mapped_column(default="pending")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(),
                                                 server_onupdate=FetchedValue())

    user: Mapped[User | None] = relationship()
    category: Mapped[Category | None] = relationship()


class OutboxEvent(Base):
    """The lab's transactional outbox (``0003_events.sql``): written in the same commit."""
    __tablename__ = "outbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    type: Mapped[str]
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    published_at: Mapped[datetime | None]


def event(kind: str, task: Task) -> OutboxEvent:
    """The event of a task's change: the task as the API answers it, without embeds."""
    payload = {"id": task.id, "title": task.title, "description": task.description,
               "status": task.status, "userId": task.user_id, "categoryId": task.category_id,
               "createdAt": task.created_at.isoformat(), "updatedAt": task.updated_at.isoformat()}
    return OutboxEvent(type=kind, payload=payload)


# The task with its user and category, in the same SELECT.
EMBEDDED = (joinedload(Task.user), joinedload(Task.category))
# API field → attribute: what update_task may set.
_ATTRIBUTES = {"title": "title", "description": "description", "status": "status",
               "userId": "user_id", "categoryId": "category_id"}


class OrmTaskRepository:
    """Tasks through the async ORM; one ``AsyncSession`` per call."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def connect(cls, url: str, search_path: str | None = None) -> OrmTaskRepository:
        """An engine on ``url`` (a ``postgresql://`` URL), through asyncpg."""
        server_settings = {} if search_path is None else {"search_path": search_path}
        engine = create_async_engine(
            make_url(url).set(drivername="postgresql+asyncpg"),
            pool_size=POOL_SIZE, max_overflow=0,
            connect_args={"server_settings": server_settings})
        return cls(engine)

    def __repr__(self) -> str:
        return f"<OrmTaskRepository {self.engine.pool.status()}>"

    async def close(self) -> None:
        await self.engine.dispose()

    async def get_task(self, task_id: int) -> Record | None:
        async with self.sessions() as session:
            task = await session.get(Task, task_id, options=EMBEDDED)
            return None if task is None else record(task)

    async def list_tasks(self, *, status: str | None = None, user_id: int | None = None,
                         category_id: int | None = None, newest_first: bool = True,
                         page: int = 1, limit: int = 20) -> Page:
        """A page of tasks and the total that matches: two statements, one session."""
        if page < 1 or limit < 1:
            raise ValueError("page and limit start at 1")
        where = []
        if status is not None:
            where.append(Task.status == status)
        if user_id is not None:
            where.append(Task.user_id == user_id)
        if category_id is not None:
            where.append(Task.category_id == category_id)
        order = ((Task.created_at.desc(), Task.id.desc()) if newest_first
                 else (Task.created_at.asc(), Task.id.asc()))
        async with self.sessions() as session:
            tasks = await session.scalars(
                select(Task).options(*EMBEDDED).where(*where).order_by(*order)
                .limit(limit).offset((page - 1) * limit))
            items = [record(task) for task in tasks]
            total = await session.scalar(select(func.count()).select_from(Task).where(*where))
        return Page(items, total, page * limit < total)

    async def create_task(self, fields: dict[str, Any]) -> Record:
        async with self.sessions() as session:
            task = Task(title=fields["title"], description=fields.get("description", ""),
                        status=fields.get("status", "pending"), user_id=fields["userId"],
                        category_id=fields.get("categoryId"))
            session.add(task)
            await session.flush()  # INSERT ... RETURNING id, created_at, updated_at
            session.add(event("task.created", task))  # the event, in the same transaction
            await session.commit()
            return record(await _refresh(session, task.id))

    async def update_task(self, task_id: int, changes: dict[str, Any]) -> Record | None:
        unknown = set(changes) - set(_ATTRIBUTES)
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))}")
        async with self.sessions() as session:
            task = await session.get(Task, task_id, options=EMBEDDED)
            if task is None:
                return None
            for field, value in changes.items():
                setattr(task, _ATTRIBUTES[field], value)
            await session.flush()  # UPDATE ... RETURNING updated_at (eager_defaults)
            session.add(event("task.updated", task))  # the event, in the same transaction
            await session.commit()
            if {"userId", "categoryId"} & changes.keys():
                task = await _refresh(session, task_id)  # a new foreign key, a new relationship
            return record(task)


async def _refresh(session: AsyncSession, task_id: int) -> Task:
    """The task re-read with its user and category: a refresh with loader options.

    ``session.refresh(task, ["user", "category"])`` would load each relationship
    with its own lazy SELECT (three statements); the docs' answer for a refresh
    that controls how relationships load is ``populate_existing`` -- one SELECT
    with the joins, in a new transaction after the commit.
    """
    task = await session.get(Task, task_id, options=EMBEDDED, populate_existing=True)
    assert task is not None, "a row this session just wrote"
    return task


def record(task: Task) -> Record:
    """The API's record of a task, from the ORM object (its relationships loaded)."""
    user, category = task.user, task.category
    return {
        "id": task.id, "title": task.title, "description": task.description,
        "status": task.status, "userId": task.user_id, "categoryId": task.category_id,
        "createdAt": task.created_at, "updatedAt": task.updated_at,
        "user": None if user is None else {"id": user.id, "name": user.name,
                                           "email": user.email},
        "category": None if category is None else {"id": category.id, "name": category.name},
    }
