"""Declarative schemas: what a request may contain, written once, checked and documented.

A route declares ``Schema("TaskCreate", {"title": String(min_length=1), ...})`` instead of
testing ``if "title" not in body`` by hand. The same declaration validates a JSON body
(``validate``) or a query string (``validate_query``) and writes the OpenAPI 3.0.3 schema
(``openapi``, ``parameters``), so the documentation cannot drift from what the server checks.

Choices, and how they differ from pydantic:

* **No coercion.** JSON has types, so a JSON ``"8"``, ``8.0`` or ``true`` is not an integer
  (``bool`` is a subclass of ``int`` in Python, hence ``type(v) is int``). Only URL text is
  converted, by ``Field.parse``, and strictly: an integer is ``-?[0-9]{1,18}``, so ``" 8"``,
  ``"+8"``, ``"8e3"`` and Arabic-Indic digits are refused and a 5000-digit string never reaches
  ``int()``. Pydantic's default "lax" mode accepts several of these.
* **Every problem, not the first.** Errors are collected -- fields in declaration order, then
  unknown keys in input order, then the object-level rule -- and raised together as
  ``ValidationFailed``, so a client fixes its request in one round trip.
* **Unknown keys are rejected** by default, so a typo like ``"titel"`` is an error rather
  than silently dropped; ``unknown="ignore"`` drops them instead.
* **An absent optional field stays absent** from the result (unless it has a default): that
  is how a partial update tells "not given" from "set to null".
* **Pure Python.** Fields use ``__slots__``; on success nothing is raised and only the result
  dict is allocated. pydantic-core does the same walk in compiled Rust, so it is faster;
  the lab's benchmarks measure by how much.

The field types live in ``fields.py``; ``from lab.http.schema import Schema,
Integer, ...`` gives both.

Not handled: ``$ref`` reuse of nested schemas, ``oneOf``, formats beyond email and
date-time, arrays in query strings.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from lab.http.errors import ValidationFailed
from lab.http.fields import (  # noqa: F401 -- re-exported: import fields from here too
    LOCATIONS,
    MISSING,
    Array,
    Boolean,
    DateTime,
    Email,
    Enum,
    Field,
    Integer,
    Invalid,
    Object,
    String,
    openapi_keywords,
    report,
)


class Schema:
    """A named set of fields that validates one object and describes it in OpenAPI."""

    __slots__ = ("_at_least", "_fields", "at_least_one", "description", "fields", "name",
                 "unknown")

    def __init__(self, name: str, fields: dict[str, Field], *, unknown: str = "reject",
                 at_least_one: bool = False, description: str = ""):
        if unknown not in ("reject", "ignore"):
            raise ValueError(f'unknown must be "reject" or "ignore", not {unknown!r}')
        for key, field in fields.items():  # a bad default is the declaration's bug: say so now
            if field.default is not MISSING:
                try:
                    field.clean(field.default)
                except (Invalid, ValidationFailed) as problem:
                    raise ValueError(f"{name}: bad default {field.default!r}: "
                                     f"{report(None, key, problem)}") from None
        self.name, self.fields, self.unknown = name, dict(fields), unknown
        self.at_least_one, self.description = at_least_one, description
        self._fields = tuple(self.fields.items())  # what the per-request loop walks
        self._at_least = "must have at least one of: " + ", ".join(self.fields)

    def validate(self, data: Any) -> dict[str, Any]:
        """Check a parsed JSON body; return a new dict of cleaned values and filled defaults."""
        if type(data) is not dict:
            raise ValidationFailed([{"path": "", "message": "must be a JSON object"}])
        return self._validate(data, from_text=False)

    def validate_query(self, query: Mapping[str, str]) -> dict[str, Any]:
        """Check a query string: a dict, or a multidict, where a key may come twice."""
        return self._validate(query, from_text=True)

    def _validate(self, data: Mapping[str, Any], *, from_text: bool,
                  repeated: frozenset[str] = frozenset()) -> dict[str, Any]:
        result: dict[str, Any] = {}
        errors = None
        given = 0  # how many of our fields are present
        for name, field in self._fields:
            value = data.get(name, MISSING)  # a multidict answers with the first value
            if value is MISSING:
                if field.required:
                    errors = report(errors, name, "is required")
                elif (default := field.default) is not MISSING:
                    # a list or dict is copied, or one object would be shared by every request
                    mutable = isinstance(default, (list, dict))
                    result[name] = copy.deepcopy(default) if mutable else default
                continue
            given += 1
            if name in repeated:
                errors = report(errors, name, "must be given once")
                continue
            try:
                result[name] = field.parse(value) if from_text else field.clean(value)
            except (Invalid, ValidationFailed) as problem:
                errors = report(errors, name, problem)
        if given < len(data):
            # Some keys are not ours, or one of ours came twice (a multidict's len() counts
            # every occurrence). Rare, so looked into only now; a repeat means one more pass,
            # which keeps its error in declaration order.
            if from_text and not repeated and hasattr(data, "getall"):  # only a multidict can
                twice = frozenset(key for key in self.fields if len(data.getall(key, ())) > 1)
                if twice:
                    return self._validate(data, from_text=True, repeated=twice)
            if self.unknown == "reject":
                for key in dict.fromkeys(data):  # input order, each key once
                    if key not in self.fields:
                        errors = report(errors, key, "is not allowed")
        if self.at_least_one and given == 0:
            errors = report(errors, "", self._at_least)
        if errors:
            raise ValidationFailed(errors)
        return result

    def partial(self, name: str) -> Schema:
        """Same fields, all optional and without defaults, at least one given: a PUT body."""
        return Schema(name, {key: field.optional() for key, field in self._fields},
                      unknown=self.unknown, at_least_one=True, description=self.description)

    def openapi(self) -> dict[str, Any]:
        return openapi_keywords(
            type="object",
            properties={name: field.openapi() for name, field in self._fields},
            required=[name for name, field in self._fields if field.required] or None,
            additionalProperties=False if self.unknown == "reject" else None,
            minProperties=1 if self.at_least_one else None,
            description=self.description or None,
        )

    def parameters(self, location: str = "query") -> list[dict[str, Any]]:
        """One OpenAPI parameter object per field, ``in`` query (or path, header, cookie)."""
        if location not in LOCATIONS:
            raise ValueError(f"location must be one of {LOCATIONS}, not {location!r}")
        if location == "path" and not all(field.required for _, field in self._fields):
            raise ValueError("OpenAPI 3.0.3 requires every path parameter to be required")
        return [openapi_keywords(**{"name": name, "in": location, "required": field.required,
                          "schema": field.openapi(), "description": field.description or None})
                for name, field in self._fields]

    def __repr__(self) -> str:
        return f"Schema({self.name!r}, fields={list(self.fields)})"
