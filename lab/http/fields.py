"""The field types a schema is made of: each checks one value and describes it in OpenAPI.

``Integer``, ``String``, ``Email``, ``Enum``, ``Boolean``, ``DateTime``, and the
nested ``Object`` and ``Array``. A field's ``clean`` takes a value from parsed
JSON, its ``parse`` takes text from a URL (a query string or a path segment)
and converts it strictly; both return the cleaned value or raise ``Invalid``
with a message for the client. ``schema.py`` explains the choices (no
coercion, every problem reported, unknown keys refused); ``Schema`` there
walks a request's fields with these.
"""

from __future__ import annotations

import copy
import re
from abc import ABC, abstractmethod
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lab.http.errors import ValidationFailed

if TYPE_CHECKING:
    from lab.http.schema import Schema


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # "no value": not None, which is JSON null

_INTEGER_TEXT = re.compile(r"-?[0-9]{1,18}")  # 18 digits always fit in a signed 64-bit int
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_BOOLEAN_TEXT = {"true": True, "false": False}
LOCATIONS = ("query", "path", "header", "cookie")


class Invalid(Exception):
    """A value is wrong; ``message`` is written for the client ("must be an integer")."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def openapi_keywords(**keywords: Any) -> dict[str, Any]:
    """The OpenAPI keywords that are set (not None)."""
    return {key: value for key, value in keywords.items() if value is not None}


class Field(ABC):
    """One value's rules: ``clean`` checks a value from parsed JSON, ``parse`` text from a URL.

    A subclass writes ``_check`` (never called with None), ``_openapi_type``, and
    ``_from_text`` if URL text needs converting before the checks.
    """

    __slots__ = ("default", "description", "example", "nullable", "required")

    def __init__(self, *, required: bool = True, default: Any = MISSING, nullable: bool = False,
                 description: str = "", example: Any = MISSING):
        self.required = required and default is MISSING  # a default makes a field optional
        self.default = default
        self.nullable = nullable
        self.description = description
        self.example = example

    def clean(self, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise Invalid("must not be null")
        return self._check(value)

    def parse(self, text: str) -> Any:
        return self.clean(self._from_text(text))

    def optional(self) -> Field:
        """A copy that may be left out and has no default (for partial updates)."""
        twin = copy.copy(self)
        twin.required, twin.default = False, MISSING
        return twin

    def openapi(self) -> dict[str, Any]:
        schema = self._openapi_type()
        if self.nullable:
            schema["nullable"] = True
        if self.default is not MISSING:
            schema["default"] = self.default
        if self.description:
            schema["description"] = self.description
        if self.example is not MISSING:
            schema["example"] = self.example
        return schema

    @abstractmethod
    def _check(self, value: Any) -> Any:
        """The cleaned value of a non-null ``value``, or Invalid."""

    @abstractmethod
    def _openapi_type(self) -> dict[str, Any]:
        """This field's JSON Schema, without the options every field shares."""

    def _from_text(self, text: str) -> Any:
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.openapi()})"


class Integer(Field):
    __slots__ = ("maximum", "minimum")

    def __init__(self, minimum: int | None = None, maximum: int | None = None, **opts: Any):
        if minimum is not None and maximum is not None and minimum > maximum:
            raise ValueError(f"minimum {minimum} is above maximum {maximum}")
        super().__init__(**opts)
        self.minimum, self.maximum = minimum, maximum

    def _check(self, value: Any) -> int:
        if type(value) is not int:  # not isinstance: True is an int to Python, not to a client
            raise Invalid("must be an integer")
        if self.minimum is not None and value < self.minimum:
            raise Invalid(f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise Invalid(f"must be at most {self.maximum}")
        return value

    def _from_text(self, text: str) -> int:
        if _INTEGER_TEXT.fullmatch(text) is None:  # also keeps huge inputs away from int()
            raise Invalid("must be an integer")
        return int(text)

    def _openapi_type(self) -> dict[str, Any]:
        return openapi_keywords(type="integer", minimum=self.minimum, maximum=self.maximum)


class String(Field):
    """Length is counted in code points, as ``len()`` and JSON Schema's ``maxLength`` do.

    The NUL character is refused: PostgreSQL's ``text`` cannot hold it, and no
    legitimate name or title contains it.
    """

    __slots__ = ("max_length", "min_length")

    def __init__(self, min_length: int = 0, max_length: int | None = None, **opts: Any):
        if min_length < 0 or (max_length is not None and max_length < min_length):
            raise ValueError(f"bad length range {min_length}..{max_length}")
        super().__init__(**opts)
        self.min_length, self.max_length = min_length, max_length

    def _check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string")
        if len(value) < self.min_length:
            raise Invalid(f"must be at least {_plural(self.min_length, 'character')} long")
        if self.max_length is not None and len(value) > self.max_length:
            raise Invalid(f"must be at most {_plural(self.max_length, 'character')} long")
        if "\x00" in value:
            raise Invalid("must not contain the NUL character")
        return value

    def _openapi_type(self) -> dict[str, Any]:
        return openapi_keywords(type="string", minLength=self.min_length or None,
                                maxLength=self.max_length)


class Email(String):
    """Deliberately loose: one "@", a non-empty local part, a domain with a dot, no whitespace.

    RFC 5322 (quoted local parts, comments) is not worth enforcing: the only real test of an
    address is mailing it. Loose also means every address hypothesis's ``emails()`` makes
    -- and so schemathesis, from ``format: email`` -- is accepted.
    """

    __slots__ = ()

    def __init__(self, max_length: int = 254, **opts: Any):  # 254: the SMTP path limit
        super().__init__(max_length=max_length, **opts)

    def _check(self, value: Any) -> str:
        if _EMAIL.fullmatch(super()._check(value)) is None:  # length first: no regex on a megabyte
            raise Invalid("must be a valid email address")
        return value

    def _openapi_type(self) -> dict[str, Any]:
        return {**super()._openapi_type(), "format": "email"}


class Enum(Field):
    __slots__ = ("_allowed", "_message", "choices")

    def __init__(self, *choices: str, **opts: Any):
        if not choices or not all(isinstance(choice, str) for choice in choices):
            raise ValueError(f"Enum needs one or more string choices, not {choices}")
        if len(set(choices)) != len(choices):
            raise ValueError(f"Enum choices repeat: {choices}")
        super().__init__(**opts)
        self.choices, self._allowed = choices, frozenset(choices)
        self._message = "must be one of: " + ", ".join(choices)

    def _check(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self._allowed:  # str first: [] is unhashable
            raise Invalid(self._message)
        return value

    def _openapi_type(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices)}


class Boolean(Field):
    __slots__ = ()

    def _check(self, value: Any) -> bool:
        if type(value) is not bool:  # 0 and 1 are numbers in JSON, not booleans
            raise Invalid("must be true or false")
        return value

    def _from_text(self, text: str) -> Any:
        return _BOOLEAN_TEXT.get(text, text)  # any other text then fails _check

    def _openapi_type(self) -> dict[str, Any]:
        return {"type": "boolean"}


class DateTime(Field):
    """A ``datetime``, or an ISO-8601 string returned as a ``datetime``; mostly for responses."""

    __slots__ = ()

    def _check(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(value)  # TypeError when value is not a str
        except (TypeError, ValueError):
            raise Invalid("must be an ISO-8601 date-time") from None

    def _openapi_type(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


class Object(Field):
    """A nested object. Its schema raises ValidationFailed, re-pathed under this field."""

    __slots__ = ("schema",)

    def __init__(self, schema: Schema, **opts: Any):
        super().__init__(**opts)
        self.schema = schema

    def _check(self, value: Any) -> dict[str, Any]:
        return self.schema.validate(value)

    def _from_text(self, text: str) -> Any:
        raise Invalid("cannot be given in a query string")

    def _openapi_type(self) -> dict[str, Any]:
        return self.schema.openapi()


class Array(Field):
    """A JSON array whose items all follow ``item``; an item's problem has the path "tags[0]"."""

    __slots__ = ("item", "max_items", "min_items")

    def __init__(self, item: Field, min_items: int = 0, max_items: int | None = None,
                 **opts: Any):
        if min_items < 0 or (max_items is not None and max_items < min_items):
            raise ValueError(f"bad item count range {min_items}..{max_items}")
        super().__init__(**opts)
        self.item, self.min_items, self.max_items = item, min_items, max_items

    def _check(self, value: Any) -> list[Any]:
        if type(value) is not list:
            raise Invalid("must be an array")
        # Count before looking inside: refusing a huge array costs one len().
        if len(value) < self.min_items:
            raise Invalid(f"must have at least {_plural(self.min_items, 'item')}")
        if self.max_items is not None and len(value) > self.max_items:
            raise Invalid(f"must have at most {_plural(self.max_items, 'item')}")
        cleaned, errors = [], None
        for index, item in enumerate(value):
            try:
                cleaned.append(self.item.clean(item))
            except (Invalid, ValidationFailed) as problem:
                errors = report(errors, f"[{index}]", problem)
        if errors:
            raise ValidationFailed(errors)
        return cleaned

    def _from_text(self, text: str) -> Any:
        raise Invalid("cannot be given in a query string")

    def _openapi_type(self) -> dict[str, Any]:
        return openapi_keywords(type="array", items=self.item.openapi(),
                                minItems=self.min_items or None, maxItems=self.max_items)


def report(errors: list[dict[str, str]] | None, path: str,
            problem: str | Invalid | ValidationFailed) -> list[dict[str, str]]:
    """``errors`` plus ``problem`` found at ``path``. The list is made on the first problem, so
    a valid request never allocates one. A nested failure brings sub-paths: "" → "user",
    "name" → "user.name", "[0]" → "tags[0]"."""
    errors = [] if errors is None else errors
    if isinstance(problem, ValidationFailed):
        for error in problem.errors:
            inner = error["path"]
            joined = path + inner if not inner or inner.startswith("[") else f"{path}.{inner}"
            errors.append({"path": joined, "message": error["message"]})
    else:
        errors.append({"path": path, "message": getattr(problem, "message", problem)})
    return errors
