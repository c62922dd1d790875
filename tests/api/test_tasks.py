"""/tasks over HTTP: the contract's rules, filters, paging and every error path."""

from __future__ import annotations

import pytest

from lab.api.store import TaskQuery


@pytest.fixture
async def people(api):
    return await api.user("Ada Lovelace"), await api.category("Work")


async def test_create_fills_defaults_and_embeds_user_and_category(api, people):
    ada, work = people
    status, body = await api.call("POST", "/tasks", {"title": "Write", "userId": ada["id"],
                                                     "categoryId": work["id"]})
    assert status == 201
    task = body["data"]
    assert (task["title"], task["description"], task["status"]) == ("Write", "", "pending")
    assert task["user"] == {"id": ada["id"], "name": "Ada Lovelace",
                            "email": "ada.lovelace@example.com"}
    assert task["category"] == {"id": work["id"], "name": "Work"}
    assert set(task) == {"id", "title", "description", "status", "userId", "categoryId", "user",
                         "category", "createdAt", "updatedAt"}
    assert await api.call("GET", f"/tasks/{task['id']}") == (200, {"data": task})


VALID = {"title": "t", "userId": 1}


@pytest.mark.parametrize("change, path", [
    ({"title": None}, "title"), ({"title": ""}, "title"), ({"title": "x" * 201}, "title"),
    ({"description": "x" * 1001}, "description"), ({"status": "done"}, "status"),
    ({"userId": 1.5}, "userId"), ({"userId": "1"}, "userId"), ({"userId": True}, "userId"),
    ({"userId": 0}, "userId"), ({"userId": 1.0}, "userId"), ({"categoryId": "1"}, "categoryId"),
    ({"priority": "high"}, "priority"), ({"title": "nul\x00byte"}, "title"),
])
async def test_create_refuses_bad_fields(api, people, change, path):
    body = {**VALID, **change}
    if change.get("title", "") is None:
        del body["title"]
    status, answer = await api.call("POST", "/tasks", body)
    assert status == 400, answer
    assert answer["message"] == "Validation error"
    assert [e["path"] for e in answer["errors"]] == [path]


async def test_edge_values_that_are_allowed(api, people):
    ada, _ = people
    task = await api.task(title="x" * 200, description="", userId=ada["id"], categoryId=None,
                          status="in-progress")
    assert (task["categoryId"], task["status"]) == (None, "in-progress")
    assert len((await api.task(title="t", description="d" * 1000, userId=1))["description"]) == (
        1000)


@pytest.mark.parametrize("field, value, message", [("userId", 99, "no user with id 99"),
                                                   ("categoryId", 98, "no category with id 98")])
async def test_an_unknown_user_or_category_is_a_400_on_that_field(api, people, field, value,
                                                                  message):
    status, body = await api.call("POST", "/tasks", {**VALID, field: value})
    assert (status, body) == (400, {"message": "Validation error",
                                    "errors": [{"path": field, "message": message}]})
    task = await api.task(**VALID)
    status, body = await api.call("PUT", f"/tasks/{task['id']}", {field: value})
    assert (status, body["errors"][0]["path"]) == (400, field)


async def test_update_changes_only_what_it_is_given(api, people):
    ada, work = people
    task = await api.task(title="t", description="d", userId=ada["id"], categoryId=work["id"])
    status, body = await api.call("PUT", f"/tasks/{task['id']}", {"status": "completed",
                                                                   "categoryId": None})
    changed = body["data"]
    assert status == 200
    assert (changed["title"], changed["description"], changed["status"]) == (
        "t", "d", "completed")
    assert (changed["categoryId"], changed["category"]) == (None, None)
    for bad in ({}, {"id": 5}, {"createdAt": "2020-01-01T00:00:00Z"}, {"title": ""}):
        assert (await api.call("PUT", f"/tasks/{task['id']}", bad))[0] == 400, bad
    assert (await api.call("PUT", "/tasks/999", {"title": "x"}))[0] == 404


async def test_delete(api, people):
    task = await api.task(**VALID)
    assert (await api.call("DELETE", f"/tasks/{task['id']}")) == (204, b"")
    assert await api.call("GET", f"/tasks/{task['id']}") == (
        404, {"message": f"Task {task['id']} not found"})
    assert (await api.call("DELETE", f"/tasks/{task['id']}"))[0] == 404


@pytest.mark.parametrize("path, status", [("/tasks/abc", 400), ("/tasks/1.5", 400),
                                          ("/tasks/-1", 400), ("/tasks/0", 404),
                                          ("/tasks/99999999999999999999", 400),
                                          ("/tasks/1/extra", 404), ("/nowhere", 404)])
async def test_path_errors(api, path, status):
    answer_status, body = await api.call("GET", path)
    assert answer_status == status
    assert isinstance(body["message"], str)


# list ------------------------------------------------------------------------------
@pytest.fixture
async def listed(api, people):
    ada, work = people
    bob, home = await api.user("Bob Stone"), await api.category("Home")
    made = []
    for n in range(12):
        made.append(await api.task(
            title=f"task {n}" + (" report" if n % 4 == 0 else ""),
            description="QUARTERLY" if n == 5 else "",
            status=("pending", "in-progress", "completed")[n % 3],
            userId=(ada, bob)[n % 2]["id"], categoryId=(work, home, None)[n % 3] and
            (work, home)[n % 3]["id"]))
    return made


async def listing(api, query: str) -> dict:
    status, body = await api.call("GET", f"/tasks?{query}")
    assert status == 200, body
    return body


async def test_filters_search_and_sort(api, listed):
    newest_first = [t["id"] for t in reversed(listed)]
    assert [t["id"] for t in (await listing(api, "limit=100"))["data"]] == newest_first
    assert [t["id"] for t in (await listing(api, "limit=100&sort=asc"))["data"]] == (
        newest_first[::-1])
    body = await listing(api, "status=completed&userId=2")
    assert [t["id"] for t in body["data"]] == [t["id"] for t in reversed(listed)
                                               if t["status"] == "completed" and t["userId"] == 2]
    assert body["total"] == len(body["data"])
    body = await listing(api, "categoryId=2")
    assert all(t["categoryId"] == 2 for t in body["data"]) and body["total"] == 4
    assert (await listing(api, "search=REPORT"))["total"] == 3  # tasks 0, 4, 8
    assert [t["id"] for t in (await listing(api, "search=quarterly"))["data"]] == [6]
    assert (await listing(api, "search=stone"))["total"] == 6  # Bob Stone's tasks
    assert (await listing(api, "search=home"))["total"] == 4  # the Home category


async def test_pages_and_cursors(api, listed):
    body = await listing(api, "page=2&limit=5")
    assert [t["id"] for t in body["data"]] == [7, 6, 5, 4, 3]
    assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (12, 2, 5, 3)
    first = await listing(api, "limit=5")
    walked, cursor = [t["id"] for t in first["data"]], first["nextCursor"]
    while cursor:
        page = await listing(api, f"limit=5&after={cursor}")
        assert set(page) == {"data", "limit", "nextCursor"}
        walked += [t["id"] for t in page["data"]]
        cursor = page["nextCursor"]
    assert walked == list(range(12, 0, -1))
    assert (await listing(api, "page=3&limit=5"))["nextCursor"] is None
    assert (await listing(api, "page=9"))["data"] == []


@pytest.mark.parametrize("query, path", [
    ("status=bogus", "status"), ("limit=0", "limit"), ("limit=101", "limit"),
    ("page=0", "page"), ("userId=abc", "userId"), ("userId=1.5", "userId"),
    ("categoryId=-1", "categoryId"), ("sort=up", "sort"), ("search=", "search"),
    ("status=pending&status=completed", "status"), ("stauts=pending", "stauts"),
])
async def test_the_list_refuses_bad_queries(api, query, path):
    status, body = await api.call("GET", f"/tasks?{query}")
    assert status == 400
    assert [e["path"] for e in body["errors"]] == [path]


BAD_CURSOR = "Invalid cursor in 'after'"


@pytest.mark.parametrize("query, message", [
    ("after=not-a-cursor", BAD_CURSOR), ("after=e30", BAD_CURSOR),  # e30 is base64 of {}
    ("page=2&after=WyIiLDFd", "Use either 'page' or 'after', not both"),
])
async def test_bad_cursors_are_400s(api, query, message):
    assert await api.call("GET", f"/tasks?{query}") == (400, {"message": message})


# the body and the protocol ---------------------------------------------------------
async def test_body_errors(api, people):
    post = api.client.post
    async with post("/tasks", data=b'{"title": "t", "userId": 1', headers=JSON) as r:
        assert (r.status, await r.json()) == (400, {"message": "Request body is not valid JSON"})
    async with post("/tasks", data=b"[1, 2]", headers=JSON) as r:
        assert r.status == 400
        assert (await r.json())["errors"] == [{"path": "", "message": "must be a JSON object"}]
    async with post("/tasks", data=b"", headers=JSON) as r:
        assert r.status == 400
    async with post("/tasks", data=b'{"title": "t", "userId": 1}',
                    headers={"Content-Type": "text/plain"}) as r:
        assert (r.status, (await r.json())["message"]) == (
            415, "Content-Type must be application/json")
    async with post("/tasks", data=b'{"title": "' + b"x" * (1024 * 1024) + b'"}',
                    headers=JSON) as r:
        assert r.status == 413
    assert (await api.store.list_tasks(TaskQuery())).total == 0  # none of them created a task


JSON = {"Content-Type": "application/json"}


async def test_405_names_the_allowed_methods(api):
    async with api.client.patch("/tasks/1", json={}) as r:
        assert (r.status, r.headers["Allow"]) == (405, "DELETE, GET, HEAD, PUT")
    async with api.client.delete("/tasks") as r:
        assert (r.status, r.headers["Allow"]) == (405, "GET, HEAD, POST")


async def test_head_answers_the_headers_of_get(api, people):
    task = await api.task(**VALID)
    async with api.client.get(f"/tasks/{task['id']}") as r:
        size = len(await r.read())
    async with api.client.head(f"/tasks/{task['id']}") as r:
        assert (r.status, await r.read()) == (200, b"")
        assert int(r.headers["Content-Length"]) == size


async def test_every_answer_carries_a_request_id(api):
    async with api.client.get("/health", headers={"X-Request-Id": "trace-42"}) as r:
        assert r.headers["X-Request-Id"] == "trace-42"
        assert await r.json() == {"status": "ok", "store": api.store.name}
    async with api.client.get("/nowhere") as r:
        assert r.status == 404 and r.headers["X-Request-Id"]
