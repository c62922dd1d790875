"""/users over HTTP: every endpoint and every error path of the contract."""

from __future__ import annotations

import pytest

from tests.api.conftest import stored_password_hash


async def test_create_answers_201_without_the_password(api):
    status, body = await api.call("POST", "/users", {"name": "Ada", "email": "ada@example.com",
                                                     "password": "secret1"})
    assert status == 201
    user = body["data"]
    assert set(user) == {"id", "name", "email", "createdAt", "updatedAt"}
    assert (user["id"], user["name"], user["email"]) == (1, "Ada", "ada@example.com")
    stored = await stored_password_hash(api.store, 1)
    assert stored.startswith("scrypt$") and "secret1" not in stored


async def test_no_answer_ever_carries_a_password_or_its_hash(api):
    ada = await api.user()
    await api.task(title="t", userId=ada["id"])
    answers = [await api.call("GET", path) for path in
               ("/users", "/users/1", "/tasks", "/tasks/1")]
    answers.append(await api.call("PUT", "/users/1", {"name": "Countess"}))
    for status, body in answers:
        assert status == 200
        assert "password" not in repr(body).lower() and "scrypt" not in repr(body)


@pytest.mark.parametrize("fields, path, message", [
    ({"email": "a@example.com", "password": "secret1"}, "name", "is required"),
    ({"name": "", "email": "a@example.com", "password": "secret1"}, "name", "at least 1"),
    ({"name": "x" * 101, "email": "a@example.com", "password": "secret1"}, "name", "at most 100"),
    ({"name": "A", "email": "not-an-email", "password": "secret1"}, "email", "email"),
    ({"name": "A", "email": "a@example.com", "password": "12345"}, "password", "at least 6"),
    ({"name": "A", "email": "a@example.com"}, "password", "is required"),
    ({"name": 7, "email": "a@example.com", "password": "secret1"}, "name", "string"),
    ({"name": "A", "email": "a@example.com", "password": "secret1", "admin": True},
     "admin", "not allowed"),
])
async def test_create_refuses_bad_fields(api, fields, path, message):
    status, body = await api.call("POST", "/users", fields)
    assert status == 400
    assert body["message"] == "Validation error"
    assert [e["path"] for e in body["errors"]] == [path]
    assert message in body["errors"][0]["message"]


async def test_every_problem_is_listed_at_once(api):
    status, body = await api.call("POST", "/users", {"name": "", "email": "x"})
    assert status == 400
    assert [e["path"] for e in body["errors"]] == ["name", "email", "password"]


async def test_a_duplicate_email_is_a_409_whatever_its_case(api):
    await api.user("Ada", "ada@example.com")
    status, body = await api.call("POST", "/users", {"name": "B", "email": "ADA@example.COM",
                                                     "password": "secret1"})
    assert (status, body) == (409, {"message": "Email already in use"})
    bob = await api.user("Bob")
    status, _ = await api.call("PUT", f"/users/{bob['id']}", {"email": "Ada@Example.com"})
    assert status == 409
    assert (await api.call("GET", f"/users/{bob['id']}"))[1]["data"]["email"] == (
        "bob@example.com")


async def test_get_update_delete(api):
    ada = await api.user()
    assert await api.call("GET", "/users/1") == (200, {"data": ada})
    status, body = await api.call("PUT", "/users/1", {"name": "Countess"})
    assert (status, body["data"]["name"], body["data"]["email"]) == (
        200, "Countess", "ada@example.com")
    assert body["data"]["updatedAt"] >= ada["updatedAt"]
    assert (await api.call("DELETE", "/users/1"))[0] == 204
    assert await api.call("GET", "/users/1") == (404, {"message": "User 1 not found"})
    assert (await api.call("DELETE", "/users/1"))[0] == 404
    assert (await api.call("PUT", "/users/1", {"name": "x"}))[0] == 404


@pytest.mark.parametrize("body", [{}, {"password": "newpass1"}, {"name": None}])
async def test_an_update_needs_a_known_field(api, body):
    await api.user()
    status, answer = await api.call("PUT", "/users/1", body)
    assert status == 400, answer
    assert answer["message"] == "Validation error"


async def test_deleting_a_user_keeps_their_tasks(api):
    ada = await api.user()
    task = await api.task(title="t", userId=ada["id"])
    await api.call("DELETE", f"/users/{ada['id']}")
    status, body = await api.call("GET", f"/tasks/{task['id']}")
    assert (status, body["data"]["userId"], body["data"]["user"]) == (200, None, None)


async def test_the_list_pages(api):
    for n in range(12):
        await api.user(f"user{n}")
    status, body = await api.call("GET", "/users?page=2&limit=5")
    assert status == 200
    assert [u["name"] for u in body["data"]] == [f"user{n}" for n in range(5, 10)]
    assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (12, 2, 5, 3)
    assert set(body) == {"data", "total", "page", "limit", "totalPages"}  # no cursor paging here
    status, body = await api.call("GET", "/users")
    assert (status, body["limit"], len(body["data"])) == (200, 10, 10)


@pytest.mark.parametrize("query", ["page=0", "limit=0", "limit=101", "page=x", "limit=1.5",
                                   "sort=asc"])
async def test_the_list_refuses_bad_query_parameters(api, query):
    status, body = await api.call("GET", f"/users?{query}")
    assert status == 400
    assert body["message"] == "Validation error"
