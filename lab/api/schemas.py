"""The Task API's schemas: what each request may carry and what each answer holds.

Request schemas validate (``Create*`` for POST, ``Update*`` for PUT: the same
fields, none required, at least one); response schemas are only documented in
``/openapi.json`` -- and checked against real answers by the property-based
tests, which is how a leaked ``password`` field would be caught.

The rules are the contract in DESIGN.md: ids are JSON integers in bodies and
decimal integers in query strings; unknown fields and query keys are refused
(a misspelt ``?stauts=done`` is an error, not a silently unfiltered list).
"""

from __future__ import annotations

from lab.http import openapi
from lab.http.schema import (
    Array,
    DateTime,
    Email,
    Enum,
    Integer,
    Object,
    Schema,
    String,
)

MAX_ID = 2**31 - 1  # PostgreSQL's integer: an id past it can name nothing
STATUSES = ("pending", "in-progress", "completed")


def an_id(**options) -> Integer:
    return Integer(minimum=1, maximum=MAX_ID, **options)


# requests ---------------------------------------------------------------------
CreateUser = Schema("CreateUser", {
    "name": String(min_length=1, max_length=100, example="Ada Lovelace"),
    "email": Email(example="ada@example.com"),
    "password": String(min_length=6, max_length=200, description="never returned"),
})
UpdateUser = Schema("UpdateUser", {
    "name": String(min_length=1, max_length=100),
    "email": Email(),
}).partial("UpdateUser")

CreateCategory = Schema("CreateCategory", {
    "name": String(min_length=1, max_length=100, example="Work"),
})
UpdateCategory = CreateCategory.partial("UpdateCategory")

_TASK_FIELDS = {
    "title": String(min_length=1, max_length=200, example="Write the report"),
    "description": String(max_length=1000, default=""),
    "status": Enum(*STATUSES, default="pending"),
    "userId": an_id(description="an existing user"),
    "categoryId": an_id(required=False, nullable=True, default=None,
                        description="an existing category, or null"),
}
CreateTask = Schema("CreateTask", _TASK_FIELDS)
UpdateTask = CreateTask.partial("UpdateTask")

PageQuery = Schema("PageQuery", {
    "page": Integer(minimum=1, maximum=1_000_000, default=1),
    "limit": Integer(minimum=1, maximum=100, default=10),
})
TaskListQuery = Schema("TaskListQuery", {
    "status": Enum(*STATUSES, required=False),
    "userId": an_id(required=False),
    "categoryId": an_id(required=False),
    "search": String(min_length=1, max_length=200, required=False,
                     description="case-insensitive, in title, description, user and category name"),
    "sort": Enum("asc", "desc", default="desc", description="by creation time"),
    "page": Integer(minimum=1, maximum=1_000_000, default=1),
    "limit": Integer(minimum=1, maximum=100, default=10),
    "after": String(min_length=1, max_length=200, required=False,
                    description="keyset paging: the nextCursor of the previous page"),
})

# responses --------------------------------------------------------------------
User = Schema("User", {"id": an_id(), "name": String(), "email": String(),
                       "createdAt": DateTime(), "updatedAt": DateTime()})
Category = Schema("Category", {"id": an_id(), "name": String(), "createdAt": DateTime()})
TaskUser = Schema("TaskUser", {"id": an_id(), "name": String(), "email": String()})
TaskCategory = Schema("TaskCategory", {"id": an_id(), "name": String()})
Task = Schema("Task", {
    "id": an_id(), "title": String(), "description": String(), "status": Enum(*STATUSES),
    "userId": an_id(nullable=True), "categoryId": an_id(nullable=True),
    "user": Object(TaskUser, nullable=True), "category": Object(TaskCategory, nullable=True),
    "createdAt": DateTime(), "updatedAt": DateTime(),
})
Error = openapi.Error  # the body of every error answer
Health = Schema("Health", {"status": Enum("ok"), "store": String()})


def envelope(item: Schema) -> Schema:
    return Schema(f"{item.name}Envelope", {"data": Object(item)})


def page_of(item: Schema) -> Schema:
    """A page/limit list answer."""
    return Schema(f"{item.name}Page", {
        "data": Array(Object(item)),
        "total": Integer(minimum=0),
        "page": Integer(minimum=1),
        "limit": Integer(minimum=1),
        "totalPages": Integer(minimum=0),
    })


def cursor_page_of(item: Schema) -> Schema:
    """A list answer that may continue by keyset: with ``after``, no total, page or totalPages."""
    return Schema(f"{item.name}Page", {
        "data": Array(Object(item)),
        "total": Integer(minimum=0, required=False),
        "page": Integer(minimum=1, required=False),
        "limit": Integer(minimum=1),
        "totalPages": Integer(minimum=0, required=False),
        "nextCursor": String(nullable=True, description="pass as ?after= for the next page"),
    })
