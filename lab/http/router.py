"""The URL router: from ``(method, path)`` to the declared route and its parameters.

**Why two structures.** A route with no parameter (``/health``, ``/tasks``) is
found with one hash lookup in a dict keyed by its path. A route with parameters
(``/tasks/{id:int}``) lives in a segment tree, a trie: one node per path
position, each node holding a dict of static children and at most one
parameter child. ``GET /tasks/123`` is then ``path.split("/")``, a dict lookup
for ``tasks``, a miss for ``123``, the ``{id:int}`` child, a conversion, and a
dict lookup for ``GET``. The cost grows with the number of segments in the
path, not with the number of routes. Starlette tries each route's regex in
turn, and so did aiohttp's ``UrlDispatcher``; since 3.9 aiohttp indexes
resources by their static prefix, then runs the regexes registered under it.

**Precedence.** A static segment beats a parameter (``/tasks/stats`` before
``/tasks/{id:int}``). If the static branch dead-ends -- no template further
down, or none with this method -- the walk backs up and tries the parameter
(``/a/b/d`` reaches ``/a/{x}/d`` even though ``/a/b/c`` exists). When nothing
answers, the walk is repeated slowly to say why, best answer first:

    405  a template matches the path, but not with this method (Allow lists them)
    400  a template matches the shape, but a converter refuses a segment
    404  nothing matches

**Invariants.** At one position of the tree there is at most one parameter, so
``/a/{id:int}`` and ``/a/{name}`` cannot both be declared (which should win
would be a guess). ``HEAD`` is answered by the ``GET`` route unless one is
declared; the server drops the body. The hot path raises nothing and
allocates only the split path and the params dict.

**Deliberately left out:** regex or ``{tail:path}`` converters, several
parameters in one segment (``/{a}-{b}``), trailing-slash redirects, encoded
slashes (the path arrives decoded and is split on ``/``), reverse routing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lab.http.errors import MethodNotAllowed, NotFound, ValidationFailed

MAX_INT_DIGITS = 18  # fits a signed 64-bit column; longer ids are refused, not truncated


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: a route is its declaration
class Route:
    """One declared route. ``handler`` and ``meta`` are the app's; the router never looks inside."""

    method: str
    path: str
    handler: Any
    params: tuple[str, ...]
    openapi_path: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        name = getattr(self.handler, "__qualname__", repr(self.handler))
        return f"Route({self.method} {self.path} -> {name})"


@dataclass(frozen=True, slots=True)
class _Converter:
    name: str
    convert: Callable[[str], Any]  # the value, or None when the segment is refused
    message: str


def _to_int(segment: str) -> int | None:
    # isascii() first: "٣".isdigit() is True, and int("٣") == 3.
    if segment.isascii() and segment.isdigit() and len(segment) <= MAX_INT_DIGITS:
        return int(segment)
    return None


def _to_str(segment: str) -> str | None:
    return segment or None


CONVERTERS = {
    "int": _Converter("int", _to_int, "must be an integer"),
    "str": _Converter("str", _to_str, "must not be empty"),  # "" fits no parameter anyway
}


class _Node:
    """One position in the tree; ``methods`` is non-empty where a template ends."""

    __slots__ = ("methods", "param", "static")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.param: _Param | None = None
        self.methods: dict[str, Route] = {}


@dataclass(slots=True)
class _Param:
    name: str
    converter: _Converter
    node: _Node = field(default_factory=_Node)


def _parse(path: str) -> list[str | tuple[str, _Converter]]:
    """Split a template into static segments and ``(name, converter)`` pairs."""
    if not path.startswith("/"):
        raise ValueError(f"route path must start with '/': {path!r}")
    if path == "/":
        return []
    parsed: list[str | tuple[str, _Converter]] = []
    seen: set[str] = set()
    for segment in path[1:].split("/"):
        if not segment:
            raise ValueError(f"empty segment in route path {path!r}")
        if not (segment.startswith("{") and segment.endswith("}")):
            if "{" in segment or "}" in segment:
                raise ValueError(f"a parameter must be a whole segment: {segment!r} in {path!r}")
            parsed.append(segment)
            continue
        name, colon, conv_name = segment[1:-1].partition(":")
        if not (name.isidentifier() and name.isascii()):
            raise ValueError(f"bad parameter name {name!r} in {path!r}")
        if name in seen:
            raise ValueError(f"parameter {name!r} appears twice in {path!r}")
        converter = CONVERTERS.get(conv_name if colon else "str")  # "{id:}" names no converter
        if converter is None:
            known = ", ".join(CONVERTERS)
            raise ValueError(f"unknown converter {conv_name!r} in {path!r} (known: {known})")
        seen.add(name)
        parsed.append((name, converter))
    return parsed


class Router:
    """Routes without parameters in ``_static``; the others in the tree under ``_root``."""

    def __init__(self) -> None:
        self._static: dict[str, dict[str, Route]] = {}  # path -> method -> route
        self._root = _Node()
        self._routes: list[Route] = []

    def add(self, method: str, path: str, handler: Any, **meta: Any) -> Route:
        method = method.upper()
        if not (method.isascii() and method.isalpha()):
            raise ValueError(f"bad HTTP method {method!r}")
        parsed = _parse(path)
        params = tuple(part[0] for part in parsed if isinstance(part, tuple))
        openapi_path = "/" + "/".join(p if isinstance(p, str) else "{" + p[0] + "}" for p in parsed)
        # A template without parameters goes to the dict: one hash lookup, no walk.
        methods = self._insert(parsed, path) if params else self._static.setdefault(path, {})
        if method in methods:
            raise ValueError(f"duplicate route {method} {path}")
        route = Route(method, path, handler, params, openapi_path, meta)
        methods[method] = route
        self._routes.append(route)
        return route

    def _insert(self, parsed: list[str | tuple[str, _Converter]], path: str) -> dict[str, Route]:
        """The ``methods`` dict of the template's node, created if new."""
        # A conflict is only ever found on a node that already existed (a new node has no
        # parameter yet), so a refused template leaves nothing behind.
        node = self._root
        for part in parsed:
            if isinstance(part, str):
                node = node.static.setdefault(part, _Node())
                continue
            if node.param is None:
                node.param = _Param(*part)
            elif (node.param.name, node.param.converter) != part:
                declared = f"{{{node.param.name}:{node.param.converter.name}}}"
                raise ValueError(f"{path!r} conflicts with {declared} at the same position")
            node = node.param.node
        return node.methods

    def match(self, method: str, path: str) -> tuple[Route, dict[str, Any]]:
        methods = self._static.get(path)
        if methods is not None:
            route = _for_method(methods, method)
            if route is not None:
                return route, {}
        if path.startswith("/"):
            params: dict[str, Any] = {}
            route = _find(self._root, path.split("/"), 1, method, params)
            if route is not None:
                return route, params
        raise self._miss(method, path)

    def _miss(self, method: str, path: str) -> MethodNotAllowed | ValidationFailed | NotFound:
        """The error that says why nothing answered ``method path``: the slow path."""
        allow = set(self._static.get(path, ()))
        refusals: tuple[dict[str, str], ...] = ()
        if path.startswith("/"):
            for node, refused in _shapes(self._root, path.split("/"), 1, ()):
                if not refused:
                    allow.update(node.methods)
                elif not refusals:
                    refusals = refused  # the first template in precedence order speaks
        # Had this method (or GET for a HEAD) been allowed, the fast walk would have found it.
        assert method not in allow and not (method == "HEAD" and "GET" in allow), allow
        if allow:
            if "GET" in allow:
                allow.add("HEAD")
            return MethodNotAllowed(method, sorted(allow))
        if refusals:
            return ValidationFailed(list(refusals))
        return NotFound(f"Route {method} {path} not found")

    def routes(self) -> list[Route]:
        return list(self._routes)

    def __repr__(self) -> str:
        n_static = sum(len(methods) for methods in self._static.values())
        return (f"Router({len(self._routes)} routes: {n_static} static, "
                f"{len(self._routes) - n_static} in the tree)")


def _for_method(methods: dict[str, Route], method: str) -> Route | None:
    route = methods.get(method)
    if route is None and method == "HEAD":
        route = methods.get("GET")  # HEAD is GET without the body, unless declared
    return route


def _find(node: _Node, segments: list[str], i: int, method: str,
          params: dict[str, Any]) -> Route | None:
    """Depth-first, static child before parameter child; fills ``params`` on the way."""
    if i == len(segments):
        return _for_method(node.methods, method)
    segment = segments[i]
    child = node.static.get(segment)
    if child is not None:
        route = _find(child, segments, i + 1, method, params)
        if route is not None:
            return route
    param = node.param
    if param is not None:
        value = param.converter.convert(segment)
        if value is not None:
            params[param.name] = value
            route = _find(param.node, segments, i + 1, method, params)
            if route is not None:
                return route
            del params[param.name]  # backtrack: this branch did not answer
    return None


def _shapes(node: _Node, segments: list[str], i: int, refused: tuple[dict[str, str], ...]
            ) -> Iterator[tuple[_Node, tuple[dict[str, str], ...]]]:
    """Every template node whose shape fits, in precedence order, with the segments refused."""
    if i == len(segments):
        if node.methods:
            yield node, refused
        return
    segment = segments[i]
    child = node.static.get(segment)
    if child is not None:
        yield from _shapes(child, segments, i + 1, refused)
    param = node.param
    if param is not None and segment:  # an empty segment ("//", trailing "/") fits no parameter
        if param.converter.convert(segment) is None:
            refused += ({"path": param.name, "message": param.converter.message},)
        yield from _shapes(param.node, segments, i + 1, refused)
