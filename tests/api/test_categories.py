"""/categories over HTTP."""

from __future__ import annotations

import pytest


async def test_the_whole_life_of_a_category(api):
    status, body = await api.call("POST", "/categories", {"name": "Work"})
    assert status == 201
    work = body["data"]
    assert set(work) == {"id", "name", "createdAt"}
    assert await api.call("GET", f"/categories/{work['id']}") == (200, {"data": work})
    status, body = await api.call("PUT", f"/categories/{work['id']}", {"name": "Job"})
    assert (status, body["data"]["name"]) == (200, "Job")
    status, body = await api.call("GET", "/categories")
    assert (status, [c["name"] for c in body["data"]], body["total"]) == (200, ["Job"], 1)
    assert (await api.call("DELETE", f"/categories/{work['id']}"))[0] == 204
    assert await api.call("GET", f"/categories/{work['id']}") == (
        404, {"message": f"Category {work['id']} not found"})


@pytest.mark.parametrize("body, path", [({}, "name"), ({"name": ""}, "name"),
                                        ({"name": "x" * 101}, "name"), ({"name": 5}, "name"),
                                        ({"name": "ok", "color": "red"}, "color")])
async def test_create_refuses_bad_fields(api, body, path):
    status, answer = await api.call("POST", "/categories", body)
    assert status == 400
    assert [e["path"] for e in answer["errors"]] == [path]


async def test_missing_categories_are_404s(api):
    assert (await api.call("PUT", "/categories/5", {"name": "x"}))[0] == 404
    assert (await api.call("DELETE", "/categories/5"))[0] == 404
    assert (await api.call("GET", "/categories/abc"))[0] == 400


async def test_deleting_a_category_keeps_its_tasks(api):
    ada, work = await api.user(), await api.category()
    task = await api.task(title="t", userId=ada["id"], categoryId=work["id"])
    await api.call("DELETE", f"/categories/{work['id']}")
    status, body = await api.call("GET", f"/tasks/{task['id']}")
    assert (status, body["data"]["categoryId"], body["data"]["category"]) == (200, None, None)
