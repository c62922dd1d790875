"""The FastAPI + pydantic 2 twin of the Task API's three benchmarked endpoints.

As FastAPI users write them: pydantic models with camelCase aliases, strict
ids, ``Query(...)`` parameters, ``task_id: int``, ``response_model`` answers
(serialised by pydantic-core; FastAPI 0.165's docs deprecate
``ORJSONResponse`` for that), a 415 dependency, the route's ``max_body_size``,
and exception handlers so the status codes are the lab's -- a validation error
or a body that is not JSON is 400, not FastAPI's 422. Served by uvicorn with
uvloop and httptools (``serve.py``).

Two differences from the lab, both in FastAPI's favour: unknown query keys are
ignored (the lab refuses them), and there is no request-id or timing
middleware, whose ``@app.middleware("http")`` form would cost FastAPI far more
than it costs the lab.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException as StarletteHTTPException

from bench.http.twin_aiohttp import unknown_reference
from lab.api.schemas import MAX_ID
from lab.api.store import Store, UnknownReference
from lab.api.tasks import list_answer, task_query
from lab.http.errors import HTTPError
from lab.http.request import DEFAULT_MAX_BODY_SIZE, is_json

Status = Literal["pending", "in-progress", "completed"]
Id = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]  # strict: 1.5, "1" and true refused


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)  # user_id <-> "userId"


class NewTask(CamelModel):
    """The ``POST /tasks`` body: the same rules as the lab's ``CreateTask``."""

    model_config = ConfigDict(extra="forbid")  # unknown fields are refused, as in the lab
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=1000)
    status: Status = "pending"
    user_id: Id
    category_id: Id | None = None


class TaskUser(CamelModel):
    id: int
    name: str
    email: str


class TaskCategory(CamelModel):
    id: int
    name: str


class Task(CamelModel):
    id: int
    title: str
    description: str
    status: Status
    user_id: int | None
    category_id: int | None
    created_at: datetime
    updated_at: datetime
    user: TaskUser | None
    category: TaskCategory | None


class TaskEnvelope(CamelModel):
    data: Task


class TaskPage(CamelModel):
    data: list[Task]
    total: int | None = None  # absent from keyset pages
    page: int | None = None
    limit: int
    total_pages: int | None = None
    next_cursor: str | None


async def require_json(content_type: Annotated[str | None, Header()] = None) -> None:
    """415 unless the body is JSON; ``async`` so FastAPI does not run it in a thread."""
    if content_type is None or not is_json(content_type.partition(";")[0].strip().lower()):
        raise HTTPException(415, "Content-Type must be application/json")


def fastapi_app(store: Store) -> FastAPI:
    """The three task endpoints as FastAPI users write them.

    pydantic models for the body and the answers (FastAPI 0.165 serialises a
    ``response_model`` to JSON in pydantic-core; its docs deprecate
    ``ORJSONResponse`` for that), ``Query(...)`` parameters, ``task_id: int``,
    a 415 dependency, the route's own ``max_body_size`` (413), and exception
    handlers so the status codes are the lab's: a validation error or a body
    that is not JSON is 400, not FastAPI's 422. Unknown query keys are ignored
    here (the lab refuses them); no request-id middleware, whose
    ``@app.middleware("http")`` form would cost FastAPI more than it costs the lab.
    """
    app = FastAPI(title="Task API (FastAPI twin)")

    @app.exception_handler(RequestValidationError)
    async def validation_failed(request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(problem["type"] == "json_invalid" for problem in problems):
            return JSONResponse({"message": "Request body is not valid JSON"}, 400)
        return JSONResponse({"message": "Validation error", "errors": [
            {"path": ".".join(str(part) for part in problem["loc"][1:]),
             "message": problem["msg"]} for problem in problems]}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"message": error.detail}, error.status_code, error.headers)

    @app.exception_handler(UnknownReference)
    async def unknown_reference_error(request, error: UnknownReference) -> JSONResponse:
        return JSONResponse(unknown_reference(error), 400)

    @app.exception_handler(HTTPError)  # task_query's: a bad cursor, page with after
    async def lab_error(request, error: HTTPError) -> JSONResponse:
        return JSONResponse(error.body(), error.status)

    @app.get("/tasks/{task_id}", response_model=TaskEnvelope)
    async def get_task(task_id: Annotated[int, Path(ge=0)]) -> dict:
        task = await store.get_task(task_id)
        if task is None:
            raise HTTPException(404, f"Task {task_id} not found")
        return {"data": task}

    @app.get("/tasks", response_model=TaskPage, response_model_exclude_unset=True)
    async def list_tasks(
        status: Status | None = None,
        user_id: Annotated[int | None, Query(alias="userId", ge=1, le=MAX_ID)] = None,
        category_id: Annotated[int | None, Query(alias="categoryId", ge=1, le=MAX_ID)] = None,
        search: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        sort: Literal["asc", "desc"] = "desc",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        after: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    ) -> dict:
        given = {"status": status, "userId": user_id, "categoryId": category_id,
                 "search": search, "after": after}
        query = task_query({"sort": sort, "page": page, "limit": limit,
                            **{key: value for key, value in given.items() if value is not None}})
        return list_answer(query, await store.list_tasks(query))

    @app.post("/tasks", status_code=201, response_model=TaskEnvelope,
              dependencies=[Depends(require_json)], max_body_size=DEFAULT_MAX_BODY_SIZE)
    async def create_task(task: NewTask) -> dict:
        return {"data": await store.create_task(task.model_dump(by_alias=True))}

    return app
