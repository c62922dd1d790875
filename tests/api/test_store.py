"""One behaviour suite for every store: what the Task API relies on, without HTTP.

Parametrised over the store implementations -- in memory, and PostgreSQL
(lab_test, emptied before each test, connected as lab_app like the API) --
so they cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lab.api.memory import MemoryStore
from lab.api.store import DuplicateEmail, TaskQuery, UnknownReference
from tests.api.conftest import empty_postgres

HASH = "scrypt$16$8$1$c2FsdA==$aGFzaA=="


@pytest.fixture(params=["memory", "postgres"])
async def store(request):
    store = MemoryStore() if request.param == "memory" else await empty_postgres(request)
    yield store
    await store.close()


async def seed(store, tasks: int = 0):
    ada = await store.create_user("Ada Lovelace", "ada@example.com", HASH)
    bob = await store.create_user("Bob Stone", "bob@example.com", HASH)
    work = await store.create_category("Work")
    home = await store.create_category("Home")
    for n in range(tasks):
        await store.create_task({
            "title": f"task {n}", "description": "", "status": ("pending", "completed")[n % 2],
            "userId": (ada, bob)[n % 3 == 0]["id"], "categoryId": (work, home, None)[n % 3]
            and (work, home)[n % 3]["id"]})
    return ada, bob, work, home


async def ids(store, **query) -> list[int]:
    page = await store.list_tasks(TaskQuery(**query))
    return [t["id"] for t in page.items]


# users ----------------------------------------------------------------------------
async def test_a_user_record_never_carries_the_password_hash(store):
    ada = await store.create_user("Ada", "ada@example.com", HASH)
    assert set(ada) == {"id", "name", "email", "createdAt", "updatedAt"}
    assert await store.get_user(ada["id"]) == ada
    assert HASH not in repr((await store.list_users(1, 10)).items)


async def test_emails_are_unique_case_insensitively(store):
    ada = await store.create_user("Ada", "ada@example.com", HASH)
    with pytest.raises(DuplicateEmail):
        await store.create_user("Other", "ADA@Example.com", HASH)
    bob = await store.create_user("Bob", "bob@example.com", HASH)
    with pytest.raises(DuplicateEmail):
        await store.update_user(bob["id"], {"email": "Ada@example.com"})
    # a user may change the case of their own email, and give up an email for another
    assert (await store.update_user(ada["id"], {"email": "ADA@example.com"}))["email"] == (
        "ADA@example.com")
    await store.update_user(ada["id"], {"email": "lovelace@example.com"})
    # (a refused insert may use up an id in PostgreSQL: ids grow, with gaps allowed)
    assert (await store.create_user("New", "ada@example.com", HASH))["id"] > bob["id"]


async def test_update_and_delete_report_a_missing_user(store):
    assert await store.get_user(1) is None
    assert await store.update_user(1, {"name": "x"}) is None
    assert await store.delete_user(1) is False


async def test_users_are_listed_in_pages_with_a_total(store):
    for n in range(5):
        await store.create_user(f"u{n}", f"u{n}@example.com", HASH)
    page = await store.list_users(2, 2)
    assert [u["name"] for u in page.items] == ["u2", "u3"]
    assert (page.total, page.has_more) == (5, True)
    last = await store.list_users(3, 2)
    assert ([u["name"] for u in last.items], last.has_more) == (["u4"], False)


# categories and the links from tasks ----------------------------------------------
async def test_deleting_a_user_or_category_keeps_their_tasks(store):
    ada, _, work, _ = await seed(store)
    task = await store.create_task({"title": "t", "userId": ada["id"], "categoryId": work["id"]})
    assert await store.delete_user(ada["id"]) is True
    assert await store.delete_category(work["id"]) is True
    kept = await store.get_task(task["id"])
    assert (kept["userId"], kept["user"], kept["categoryId"], kept["category"]) == (
        None, None, None, None)
    assert await ids(store, user_id=ada["id"]) == []
    assert await ids(store) == [task["id"]]


async def test_a_task_embeds_its_user_and_category_as_they_are_now(store):
    ada, _, work, _ = await seed(store)
    task = await store.create_task({"title": "t", "userId": ada["id"], "categoryId": work["id"]})
    assert task["user"] == {"id": ada["id"], "name": "Ada Lovelace", "email": "ada@example.com"}
    assert task["category"] == {"id": work["id"], "name": "Work"}
    await store.update_user(ada["id"], {"name": "Countess"})
    await store.update_category(work["id"], {"name": "Job"})
    again = await store.get_task(task["id"])
    assert (again["user"]["name"], again["category"]["name"]) == ("Countess", "Job")


async def test_a_task_must_name_an_existing_user_and_category(store):
    ada, _, _, _ = await seed(store)
    with pytest.raises(UnknownReference) as error:
        await store.create_task({"title": "t", "userId": 99})
    assert (error.value.field, error.value.value) == ("userId", 99)
    with pytest.raises(UnknownReference) as error:
        await store.create_task({"title": "t", "userId": ada["id"], "categoryId": 99})
    assert error.value.field == "categoryId"
    task = await store.create_task({"title": "t", "userId": ada["id"]})
    with pytest.raises(UnknownReference):
        await store.update_task(task["id"], {"userId": 42})
    assert (await store.get_task(task["id"]))["userId"] == ada["id"]  # nothing changed


async def test_a_new_task_takes_the_defaults(store):
    ada, _, _, _ = await seed(store)
    task = await store.create_task({"title": "t", "userId": ada["id"]})
    assert (task["description"], task["status"], task["categoryId"], task["category"]) == (
        "", "pending", None, None)
    assert task["createdAt"] == task["updatedAt"]
    assert task["createdAt"].tzinfo is not None


async def test_records_are_copies(store):
    ada, _, _, _ = await seed(store)
    task = await store.create_task({"title": "t", "userId": ada["id"]})
    task["title"] = "changed by a caller"
    task["user"]["name"] = "changed too"
    again = await store.get_task(task["id"])
    assert (again["title"], again["user"]["name"]) == ("t", "Ada Lovelace")


async def test_ids_are_never_reused(store):
    ada, _, _, _ = await seed(store)
    first = await store.create_task({"title": "a", "userId": ada["id"]})
    await store.delete_task(first["id"])
    assert await store.delete_task(first["id"]) is False
    assert (await store.create_task({"title": "b", "userId": ada["id"]}))["id"] == first["id"] + 1


async def test_update_changes_only_the_given_fields(store):
    ada, bob, work, _ = await seed(store)
    task = await store.create_task({"title": "t", "description": "d", "userId": ada["id"],
                                    "categoryId": work["id"]})
    changed = await store.update_task(task["id"], {"status": "completed", "userId": bob["id"],
                                                   "categoryId": None})
    assert (changed["title"], changed["description"], changed["status"]) == (
        "t", "d", "completed")
    assert (changed["userId"], changed["categoryId"]) == (bob["id"], None)
    assert changed["updatedAt"] >= task["updatedAt"]
    assert await ids(store, status="pending") == []
    assert await ids(store, user_id=bob["id"]) == [task["id"]]
    assert await ids(store, category_id=work["id"]) == []


# listing tasks -------------------------------------------------------------------
async def test_filters_combine(store):
    ada, bob, work, home = await seed(store, tasks=30)
    everything = (await store.list_tasks(TaskQuery(limit=100))).items
    for query in [dict(status="pending"), dict(user_id=bob["id"]), dict(category_id=home["id"]),
                  dict(status="completed", user_id=ada["id"]),
                  dict(status="pending", user_id=bob["id"], category_id=work["id"])]:
        expected = [t["id"] for t in everything
                    if t["status"] == query.get("status", t["status"])
                    and t["userId"] == query.get("user_id", t["userId"])
                    and t["categoryId"] == query.get("category_id", t["categoryId"])]
        page = await store.list_tasks(TaskQuery(limit=100, **query))
        assert [t["id"] for t in page.items] == expected, query
        assert page.total == len(expected), query


async def test_search_is_case_insensitive_across_four_fields(store):
    ada, bob, work, _ = await seed(store)
    in_title = await store.create_task({"title": "Quarterly REPORT", "userId": bob["id"]})
    in_text = await store.create_task({"title": "x", "description": "see the report",
                                       "userId": bob["id"]})
    by_user = await store.create_task({"title": "y", "userId": ada["id"]})
    in_category = await store.create_task({"title": "z", "userId": bob["id"],
                                           "categoryId": work["id"]})
    assert await ids(store, search="report") == [in_text["id"], in_title["id"]]
    assert await ids(store, search="LOVELACE") == [by_user["id"]]
    assert await ids(store, search="wOrK") == [in_category["id"]]
    assert await ids(store, search="nothing like it") == []
    assert await ids(store, search="%") == []  # a LIKE wildcard is just a character


async def test_sort_and_pages(store):
    await seed(store, tasks=25)
    newest = await ids(store, limit=100)
    assert newest == sorted(newest, reverse=True)
    assert await ids(store, newest_first=False, limit=100) == sorted(newest)
    page = await store.list_tasks(TaskQuery(page=3, limit=10))
    assert [t["id"] for t in page.items] == newest[20:]
    assert (page.total, page.has_more) == (25, False)
    assert (await store.list_tasks(TaskQuery(page=2, limit=10))).has_more is True
    beyond = await store.list_tasks(TaskQuery(page=9, limit=10))
    assert (beyond.items, beyond.total) == ([], 25)


@pytest.mark.parametrize("newest_first", [True, False])
@pytest.mark.parametrize("status", [None, "pending"])
async def test_keyset_pages_walk_the_same_list_as_offset_pages(store, newest_first, status):
    await seed(store, tasks=23)
    whole = await ids(store, newest_first=newest_first, status=status, limit=100)
    walked, after = [], None
    while True:
        page = await store.list_tasks(TaskQuery(newest_first=newest_first, status=status,
                                                limit=4, after=after))
        if after is not None:
            assert page.total is None  # keyset pages do not count
        walked += [t["id"] for t in page.items]
        if not page.has_more:
            break
        last = page.items[-1]
        after = (last["createdAt"], last["id"])
    assert walked == whole


async def test_created_at_never_goes_backwards():
    times = iter([datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)])
    store = MemoryStore(clock=lambda: next(times))
    first = await store.create_category("a")
    second = await store.create_category("b")
    assert second["createdAt"] >= first["createdAt"]
    assert second["createdAt"] - first["createdAt"] < timedelta(seconds=1)


async def test_updates_keep_every_list_in_creation_order(store):
    ada, bob, work, home = await seed(store)
    made = [await store.create_task({"title": f"t{n}", "userId": ada["id"],
                                     "categoryId": work["id"]}) for n in range(6)]
    # Touch tasks out of order: a rename (no index moves), then moves between indexes and back.
    await store.update_task(made[1]["id"], {"title": "renamed"})
    for task in (made[4], made[0], made[3]):
        await store.update_task(task["id"], {"status": "completed", "userId": bob["id"],
                                             "categoryId": home["id"]})
    for task in (made[3], made[0]):
        await store.update_task(task["id"], {"status": "pending", "userId": ada["id"],
                                             "categoryId": work["id"]})
    for query in [dict(status="pending"), dict(user_id=ada["id"]), dict(category_id=work["id"]),
                  dict(status="completed"), dict(user_id=bob["id"], search="t"),
                  dict(status="pending", category_id=work["id"])]:
        for newest_first in (True, False):
            listed = await ids(store, newest_first=newest_first, limit=100, **query)
            assert listed == sorted(listed, reverse=newest_first), (query, listed)
            walked, after = [], None
            while True:  # the same list, two at a time by cursor
                page = await store.list_tasks(TaskQuery(newest_first=newest_first, limit=2,
                                                        after=after, **query))
                walked += [t["id"] for t in page.items]
                if not page.has_more:
                    break
                after = (page.items[-1]["createdAt"], page.items[-1]["id"])
            assert walked == listed, (query, newest_first)
    assert await ids(store, status="completed", limit=100) == [made[4]["id"]]


async def test_emails_compare_as_lower_does(store):
    # lower(), as PostgreSQL's unique index on lower(email) will: 'ß' is not 'ss'.
    await store.create_user("A", "strasse@example.de", HASH)
    await store.create_user("B", "straße@example.de", HASH)
    with pytest.raises(DuplicateEmail):
        await store.create_user("C", "STRASSE@example.de", HASH)


INJECTIONS = ["'; DROP TABLE tasks; --", "' OR '1'='1", "%' OR 1=1 --", "\\", "_%_", "$1",
              "Robert'); DELETE FROM users; --"]


@pytest.mark.parametrize("text", INJECTIONS)
async def test_sql_in_any_value_is_only_data(store, text):
    ada, _, work, _ = await seed(store)
    sneaky = await store.create_user(text, f"x{len(text)}@example.com", HASH)
    task = await store.create_task({"title": text, "description": text, "userId": sneaky["id"],
                                    "categoryId": work["id"]})
    assert (task["title"], task["user"]["name"]) == (text, text)  # stored verbatim
    assert await ids(store, search=text) == [task["id"]]  # found as the literal text
    assert await ids(store, status=text) == []  # no status is spelled like that
    await store.create_task({"title": "plain", "userId": ada["id"]})
    assert (await store.list_tasks(TaskQuery(limit=100))).total == 2  # nothing else happened
