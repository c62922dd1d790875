"""The router on its own: templates in, ``(route, params)`` or an HTTP error out."""

from __future__ import annotations

import pytest

import lab.http.router as router_module
from lab.http.errors import MethodNotAllowed, NotFound, ValidationFailed
from lab.http.router import Route, Router


def handler(name: str):
    def handle() -> str:
        return name

    handle.__qualname__ = name
    return handle


@pytest.fixture
def router() -> Router:
    r = Router()
    r.add("GET", "/", handler("root"))
    r.add("GET", "/health", handler("health"))
    r.add("GET", "/tasks", handler("list_tasks"))
    r.add("POST", "/tasks", handler("create_task"))
    r.add("GET", "/tasks/stats", handler("task_stats"))
    r.add("GET", "/tasks/{id:int}", handler("get_task"))
    r.add("PUT", "/tasks/{id:int}", handler("replace_task"))
    r.add("DELETE", "/tasks/{id:int}", handler("delete_task"))
    r.add("GET", "/users/{name}/tasks/{id:int}", handler("user_task"))
    r.add("GET", "/api-docs/{file}", handler("docs_file"))
    return r


def name_of(result: tuple[Route, dict]) -> str:
    return result[0].handler()


# --- matches ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/", "root"),
    ("GET", "/health", "health"),
    ("GET", "/tasks", "list_tasks"),
    ("POST", "/tasks", "create_task"),
    ("GET", "/tasks/7", "get_task"),
    ("PUT", "/tasks/7", "replace_task"),
    ("DELETE", "/tasks/7", "delete_task"),
])
def test_each_method_reaches_its_own_handler(router, method, path, expected):
    assert name_of(router.match(method, path)) == expected


def test_static_route_has_no_params(router):
    route, params = router.match("GET", "/health")
    assert route.path == "/health" and params == {}


def test_int_parameter_is_converted(router):
    route, params = router.match("GET", "/tasks/123")
    assert route.path == "/tasks/{id:int}"
    assert params == {"id": 123} and type(params["id"]) is int


def test_str_parameter_keeps_the_segment(router):
    _, params = router.match("GET", "/api-docs/openapi.json")
    assert params == {"file": "openapi.json"}


def test_several_parameters_in_order(router):
    route, params = router.match("GET", "/users/ada/tasks/0042")
    assert params == {"name": "ada", "id": 42}
    assert route.params == ("name", "id")


def test_int_accepts_leading_zeros_and_eighteen_digits(router):
    assert router.match("GET", "/tasks/007")[1] == {"id": 7}
    assert router.match("GET", "/tasks/" + "9" * 18)[1] == {"id": int("9" * 18)}


def test_percent_decoded_characters_are_plain_text_to_the_router(router):
    _, params = router.match("GET", "/api-docs/a b%.json")
    assert params == {"file": "a b%.json"}


# --- precedence and backtracking -------------------------------------------------------------

def test_static_segment_beats_parameter(router):
    assert name_of(router.match("GET", "/tasks/stats")) == "task_stats"


def test_static_beats_parameter_whatever_the_order_of_declaration():
    r = Router()
    r.add("GET", "/users/{name}", handler("user"))
    r.add("GET", "/users/me", handler("me"))
    assert name_of(r.match("GET", "/users/me")) == "me"
    assert name_of(r.match("GET", "/users/ada")) == "user"


def test_backtracks_from_static_dead_end_to_parameter():
    r = Router()
    r.add("GET", "/a/b/c", handler("static"))
    r.add("GET", "/a/{x}/d", handler("param"))
    assert r.match("GET", "/a/b/d") == (r.routes()[1], {"x": "b"})
    assert name_of(r.match("GET", "/a/b/c")) == "static"


def test_backtracking_inside_the_tree_drops_params_of_the_dead_branch():
    r = Router()
    r.add("GET", "/a/b/{y}/c", handler("deep"))
    r.add("GET", "/a/{x}/d/e", handler("shallow"))
    assert r.match("GET", "/a/b/d/e") == (r.routes()[1], {"x": "b"})
    assert r.match("GET", "/a/b/d/c") == (r.routes()[0], {"y": "d"})


def test_static_branch_without_the_method_falls_back_to_parameter():
    r = Router()
    r.add("GET", "/users/me", handler("me"))
    r.add("DELETE", "/users/{name}", handler("delete_user"))
    assert r.match("DELETE", "/users/me") == (r.routes()[1], {"name": "me"})


def test_refused_conversion_falls_back_to_a_str_branch():
    r = Router()
    r.add("GET", "/a/{id:int}/x", handler("by_id"))
    r.add("GET", "/a/{id:int}/{rest}", handler("by_rest"))
    assert name_of(r.match("GET", "/a/1/x")) == "by_id"
    assert name_of(r.match("GET", "/a/1/y")) == "by_rest"


# --- HEAD ------------------------------------------------------------------------------------

def test_head_falls_back_to_get(router):
    assert router.match("HEAD", "/tasks/5") == (router.match("GET", "/tasks/5")[0], {"id": 5})
    assert name_of(router.match("HEAD", "/health")) == "health"


def test_declared_head_wins_over_get():
    r = Router()
    r.add("GET", "/x", handler("get"))
    r.add("HEAD", "/x", handler("head"))
    assert name_of(r.match("HEAD", "/x")) == "head"


# --- 404 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/nope", "/tasks/", "/tasks//", "//", "/tasks//5", "/tasks/5/", "/tasks/5/extra",
    "/health/", "/Health", "", "tasks", "/users/ada/tasks", "/api-docs/", "/api-docs/a/b",
])
def test_unknown_paths_are_404(router, path):
    with pytest.raises(NotFound) as caught:
        router.match("GET", path)
    assert caught.value.message == f"Route GET {path} not found"
    assert caught.value.status == 404


def test_not_found_names_the_request_method():
    with pytest.raises(NotFound, match="Route DELETE /nope not found"):
        Router().match("DELETE", "/nope")


# --- 405 -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/tasks", ["GET", "HEAD", "POST"]),
    ("POST", "/tasks/5", ["DELETE", "GET", "HEAD", "PUT"]),
    ("POST", "/health", ["GET", "HEAD"]),
    ("PATCH", "/tasks/stats", ["GET", "HEAD"]),
])
def test_method_not_allowed_lists_exactly_the_allowed(router, method, path, allow):
    with pytest.raises(MethodNotAllowed) as caught:
        router.match(method, path)
    assert caught.value.allow == allow
    assert caught.value.headers == {"Allow": ", ".join(allow)}
    assert caught.value.status == 405


def test_allow_has_no_head_without_get():
    r = Router()
    r.add("POST", "/jobs", handler("post"))
    r.add("DELETE", "/jobs", handler("delete"))
    with pytest.raises(MethodNotAllowed) as caught:
        r.match("HEAD", "/jobs")
    assert caught.value.allow == ["DELETE", "POST"]


def test_allow_joins_every_template_that_matches_the_path():
    r = Router()
    r.add("GET", "/users/me", handler("me"))
    r.add("PUT", "/users/{name}", handler("put"))
    with pytest.raises(MethodNotAllowed) as caught:
        r.match("POST", "/users/me")
    assert caught.value.allow == ["GET", "HEAD", "PUT"]


# --- 400: the shape matches, a converter refuses ---------------------------------------------

@pytest.mark.parametrize("segment", ["abc", "1.5", "-1", "+1", " 1", "1e3", "0x1f", "٣", "１",
                                     "1" * 19])
def test_int_converter_refusals_are_400(router, segment):
    with pytest.raises(ValidationFailed) as caught:
        router.match("GET", f"/tasks/{segment}")
    assert caught.value.errors == [{"path": "id", "message": "must be an integer"}]
    assert caught.value.status == 400


def test_every_refused_segment_is_reported():
    r = Router()
    r.add("GET", "/grid/{x:int}/{y:int}", handler("cell"))
    with pytest.raises(ValidationFailed) as caught:
        r.match("GET", "/grid/a/b")
    assert [e["path"] for e in caught.value.errors] == ["x", "y"]


def test_first_template_in_precedence_order_explains_the_refusal():
    r = Router()
    r.add("GET", "/a/{x:int}/{y:int}", handler("both"))
    r.add("GET", "/a/{x:int}/b", handler("static_tail"))
    with pytest.raises(ValidationFailed) as caught:
        r.match("GET", "/a/p/b")  # "/a/{x:int}/b" fits better: only x is wrong
    assert caught.value.errors == [{"path": "x", "message": "must be an integer"}]


def test_refusal_under_a_longer_path_is_404_not_400(router):
    with pytest.raises(NotFound):
        router.match("GET", "/tasks/abc/extra")


def test_405_from_static_beats_400_from_parameter():
    r = Router()
    r.add("GET", "/tasks/stats", handler("stats"))
    r.add("DELETE", "/tasks/{id:int}", handler("delete"))
    with pytest.raises(MethodNotAllowed) as caught:
        r.match("DELETE", "/tasks/stats")
    assert caught.value.allow == ["GET", "HEAD"]


# --- add() refuses bad templates -------------------------------------------------------------

@pytest.mark.parametrize(("path", "reason"), [
    ("tasks", "must start with '/'"),
    ("", "must start with '/'"),
    ("//", "empty segment"),
    ("/tasks//x", "empty segment"),
    ("/tasks/", "empty segment"),
    ("/tasks/{id:float}", "unknown converter 'float'"),
    ("/tasks/{id:}", "unknown converter ''"),
    ("/tasks/{}", "bad parameter name ''"),
    ("/tasks/{1id}", "bad parameter name '1id'"),
    ("/tasks/{task-id}", "bad parameter name 'task-id'"),
    ("/tasks/{id", "whole segment"),
    ("/tasks/id-{id}", "whole segment"),
    ("/a/{id}/b/{id:int}", "appears twice"),
])
def test_add_refuses_bad_templates(path, reason):
    r = Router()
    with pytest.raises(ValueError, match=reason):
        r.add("GET", path, handler("h"))
    assert r.routes() == []


def test_add_refuses_a_bad_method():
    with pytest.raises(ValueError, match="bad HTTP method"):
        Router().add("", "/x", handler("h"))


@pytest.mark.parametrize(("first", "second"), [
    ("/tasks", "/tasks"),
    ("/", "/"),
    ("/tasks/{id:int}", "/tasks/{id:int}"),
    ("/files/{name}", "/files/{name:str}"),  # {name} is {name:str}
])
def test_add_refuses_duplicate_method_and_template(first, second):
    r = Router()
    r.add("GET", first, handler("h"))
    r.add("POST", second, handler("other method is fine"))
    with pytest.raises(ValueError, match="duplicate route GET"):
        r.add("get", second, handler("h2"))


@pytest.mark.parametrize(("first", "second"), [
    ("/a/{id:int}", "/a/{name}"),
    ("/a/{id:int}", "/a/{id:str}"),
    ("/a/{id:int}/x", "/a/{key:int}/y"),
])
def test_add_refuses_two_parameters_at_one_position(first, second):
    r = Router()
    r.add("GET", first, handler("h"))
    with pytest.raises(ValueError, match="conflicts with"):
        r.add("GET", second, handler("h2"))


def test_refused_add_leaves_the_router_as_it_was(router):
    before = (router.routes(), repr(router))
    with pytest.raises(ValueError):
        router.add("GET", "/users/{login}/tasks/{id:int}", handler("conflict"))
    with pytest.raises(ValueError):
        router.add("GET", "/tasks/stats", handler("duplicate"))
    assert (router.routes(), repr(router)) == before
    assert router.match("GET", "/users/ada/tasks/1")[1] == {"name": "ada", "id": 1}


def test_same_parameter_at_one_position_shares_the_node():
    r = Router()
    r.add("GET", "/a/{id:int}", handler("get"))
    r.add("GET", "/a/{id:int}/sub", handler("sub"))
    assert name_of(r.match("GET", "/a/1/sub")) == "sub"


# --- routes(), openapi_path, meta, repr ------------------------------------------------------

def test_routes_in_the_order_added(router):
    assert [(r.method, r.path) for r in router.routes()] == [
        ("GET", "/"), ("GET", "/health"), ("GET", "/tasks"), ("POST", "/tasks"),
        ("GET", "/tasks/stats"), ("GET", "/tasks/{id:int}"), ("PUT", "/tasks/{id:int}"),
        ("DELETE", "/tasks/{id:int}"), ("GET", "/users/{name}/tasks/{id:int}"),
        ("GET", "/api-docs/{file}"),
    ]


def test_routes_returns_a_copy(router):
    router.routes().clear()
    assert len(router.routes()) == 10


@pytest.mark.parametrize(("path", "openapi_path", "params"), [
    ("/", "/", ()),
    ("/tasks", "/tasks", ()),
    ("/tasks/{id:int}", "/tasks/{id}", ("id",)),
    ("/users/{name:str}/tasks/{id:int}", "/users/{name}/tasks/{id}", ("name", "id")),
    ("/api-docs/{file}", "/api-docs/{file}", ("file",)),
])
def test_openapi_path_and_params(path, openapi_path, params):
    route = Router().add("GET", path, handler("h"))
    assert (route.path, route.openapi_path, route.params) == (path, openapi_path, params)


def test_meta_is_kept_and_method_is_upper_case():
    route = Router().add("post", "/tasks", handler("h"), summary="Create", tags=["tasks"])
    assert route.method == "POST"
    assert route.meta == {"summary": "Create", "tags": ["tasks"]}
    assert Router().add("GET", "/x", handler("h")).meta == {}


def test_route_is_frozen():
    route = Router().add("GET", "/x", handler("h"))
    with pytest.raises(AttributeError):
        route.path = "/y"


def test_reprs(router):
    assert repr(router.routes()[5]) == "Route(GET /tasks/{id:int} -> get_task)"
    assert repr(router) == "Router(10 routes: 5 static, 5 in the tree)"


# --- lookup cost does not grow with the number of routes -------------------------------------

def many_routes(n: int) -> Router:
    r = Router()
    for i in range(n):
        r.add("GET", f"/static{i}/items", handler(f"static{i}"))
        r.add("GET", f"/res{i}/{{id:int}}/items/{{item}}", handler(f"res{i}"))
    return r


def count_tree_steps(monkeypatch, router: Router, method: str, path: str) -> int:
    calls = 0
    walk = router_module._find

    def counting(*args):
        nonlocal calls
        calls += 1
        return walk(*args)

    monkeypatch.setattr(router_module, "_find", counting)  # the recursion calls it by name too
    router.match(method, path)
    monkeypatch.setattr(router_module, "_find", walk)
    return calls


def test_many_routes_still_match_right():
    r = many_routes(1000)
    assert name_of(r.match("GET", "/static999/items")) == "static999"
    assert r.match("GET", "/res500/7/items/x") == (r.routes()[1001], {"id": 7, "item": "x"})
    with pytest.raises(ValidationFailed):
        r.match("GET", "/res500/seven/items/x")
    with pytest.raises(NotFound):
        r.match("GET", "/res1000/7/items/x")


def test_tree_walk_visits_one_node_per_segment_however_many_routes(monkeypatch):
    path = "/res0/7/items/x"  # four segments: root + four steps
    few = count_tree_steps(monkeypatch, many_routes(1), "GET", path)
    lots = count_tree_steps(monkeypatch, many_routes(1000), "GET", path)
    assert few == lots == 5


def test_static_route_never_walks_the_tree(monkeypatch):
    assert count_tree_steps(monkeypatch, many_routes(1000), "GET", "/static3/items") == 0
