"""The benchmark's twins answer like the lab: same request, same status code.

``bench/http`` measures the lab's Task API against an aiohttp.web twin and a
FastAPI twin of its task endpoints. The ratios mean something only if the
three do the same work, so every request below goes to all three servers
(each started as the benchmark starts it, ``python -m bench.http.serve``, on
a free port of 127.0.0.1) and each twin must answer the lab's status code.
The lab must also answer the status the contract in DESIGN.md names.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

import aiohttp
import orjson
import pytest

from bench.servers import free_port, http_server

IMPLS = ("lab", "aiohttp", "fastapi")
TWINS = IMPLS[1:]
JSON = "application/json"
VALID = {"title": "Write the report", "description": "by Friday", "status": "in-progress",
         "userId": 7, "categoryId": 3}


def body(**changes) -> bytes:
    fields = {**VALID, **changes}
    return orjson.dumps({key: value for key, value in fields.items() if value is not ...})


# (what, expected status, method, path, body, Content-Type)
CASES = [
    ("get a task", 200, "GET", "/tasks/1", None, None),
    ("get an unknown task", 404, "GET", "/tasks/999999", None, None),
    ("get task 0", 404, "GET", "/tasks/0", None, None),
    ("get a non-integer id", 400, "GET", "/tasks/abc", None, None),
    ("get a negative id", 400, "GET", "/tasks/-1", None, None),
    ("list pending", 200, "GET", "/tasks?status=pending&limit=20", None, None),
    ("list by user, oldest first", 200, "GET", "/tasks?userId=3&sort=asc&page=2", None, None),
    ("list with a search", 200, "GET", "/tasks?search=HEALTH&categoryId=4", None, None),
    ("list an unknown status", 400, "GET", "/tasks?status=bogus", None, None),
    ("list with limit 0", 400, "GET", "/tasks?limit=0", None, None),
    ("list with limit 101", 400, "GET", "/tasks?limit=101", None, None),
    ("list page 0", 400, "GET", "/tasks?page=0", None, None),
    ("list by a non-integer userId", 400, "GET", "/tasks?userId=abc", None, None),
    ("list sorted sideways", 400, "GET", "/tasks?sort=sideways", None, None),
    ("list after a bad cursor", 400, "GET", "/tasks?after=not-a-cursor", None, None),
    ("create a task", 201, "POST", "/tasks", body(), JSON),
    ("create with the defaults", 201, "POST", "/tasks",
     body(description=..., status=..., categoryId=...), JSON),
    ("create with a null category", 201, "POST", "/tasks", body(categoryId=None), JSON),
    ("create with a +json type", 201, "POST", "/tasks", body(), "application/vnd.api+json"),
    ("create with a charset", 201, "POST", "/tasks", body(), "application/json; charset=utf-8"),
    ("create from invalid JSON", 400, "POST", "/tasks", b'{"title": ', JSON),
    ("create from an empty body", 400, "POST", "/tasks", b"", JSON),
    ("create from a JSON array", 400, "POST", "/tasks", b"[]", JSON),
    ("create without a title", 400, "POST", "/tasks", body(title=...), JSON),
    ("create with an empty title", 400, "POST", "/tasks", body(title=""), JSON),
    ("create with a 201-character title", 400, "POST", "/tasks", body(title="t" * 201), JSON),
    ("create with an unknown status", 400, "POST", "/tasks", body(status="done"), JSON),
    ("create with userId 1.5", 400, "POST", "/tasks", body(userId=1.5), JSON),
    ('create with userId "1"', 400, "POST", "/tasks", body(userId="1"), JSON),
    ("create with userId true", 400, "POST", "/tasks", body(userId=True), JSON),
    ("create for an unknown user", 400, "POST", "/tasks", body(userId=999999), JSON),
    ("create in an unknown category", 400, "POST", "/tasks", body(categoryId=999), JSON),
    ("create with an unknown field", 400, "POST", "/tasks", body(priority="high"), JSON),
    ("create as text/plain", 415, "POST", "/tasks", body(), "text/plain"),
    ("create with no Content-Type", 415, "POST", "/tasks", body(), None),
    ("create with a 2 MiB body", 413, "POST", "/tasks", body(title="t" * 2 * 1024 * 1024), JSON),
]


@pytest.fixture(scope="module")
def servers():
    """The three servers, each in its own process on a free port; always stopped."""
    ports = {impl: free_port() for impl in IMPLS}
    with contextlib.ExitStack() as stack:
        for impl, port in ports.items():
            stack.enter_context(http_server(impl, port))
        yield ports


async def send(session: aiohttp.ClientSession, port: int, method: str, path: str,
               data: bytes | None, content_type: str | None) -> tuple[int, bytes]:
    headers = {} if content_type is None else {"Content-Type": content_type}
    # skip_auto_headers: without it aiohttp labels a bytes body application/octet-stream.
    async with session.request(method, f"http://127.0.0.1:{port}{path}", data=data,
                               headers=headers, skip_auto_headers=["Content-Type"]) as response:
        return response.status, await response.read()


@pytest.mark.parametrize(("what", "expected", "method", "path", "data", "content_type"), CASES,
                         ids=[case[0] for case in CASES])
async def test_same_status_as_the_lab(servers, what, expected, method, path, data,
                                      content_type):
    statuses, bodies = {}, {}
    async with aiohttp.ClientSession() as session:
        for impl, port in servers.items():
            statuses[impl], bodies[impl] = await send(session, port, method, path, data,
                                                      content_type)
    request = f"{method} {path}" + (f" ({len(data)} bytes, {content_type})" if data else "")
    assert statuses["lab"] == expected, (
        f"{what}: the lab answered {statuses['lab']} to {request}, the contract says "
        f"{expected}: {bodies['lab'][:300]!r}")
    for twin in TWINS:
        assert statuses[twin] == statuses["lab"], (
            f"{what}: {twin} answered {statuses[twin]} to {request}, the lab "
            f"{statuses['lab']}: {bodies[twin][:300]!r}")
    if expected >= 400:
        for impl in IMPLS:  # every error is JSON with a message, from every side but one:
            if impl == "fastapi" and expected == 413:
                continue  # Starlette's body limit answers text before FastAPI's handlers run
            assert isinstance(orjson.loads(bodies[impl]).get("message"), str), (impl, what)


def same_instants(value):
    """The JSON with its timestamps parsed: pydantic writes UTC as "Z", orjson as "+00:00"."""
    if isinstance(value, dict):
        return {key: datetime.fromisoformat(item) if key in ("createdAt", "updatedAt")
                else same_instants(item) for key, item in value.items()}
    if isinstance(value, list):
        return [same_instants(item) for item in value]
    return value


@pytest.mark.parametrize("path", ["/tasks/1", "/tasks/1234", "/tasks?status=completed&limit=5"])
async def test_same_data_as_the_lab(servers, path):
    async with aiohttp.ClientSession() as session:
        answers = {impl: await send(session, port, "GET", path, None, None)
                   for impl, port in servers.items()}
    lab_status, lab_body = answers["lab"]
    assert lab_status == 200
    for twin in TWINS:
        status, twin_body = answers[twin]
        assert status == 200, (twin, path, twin_body[:300])
        assert same_instants(orjson.loads(twin_body)) == same_instants(orjson.loads(lab_body)), (
            f"{twin} and the lab disagree on GET {path}:\n{twin_body[:400]!r}\n"
            f"{lab_body[:400]!r}")
