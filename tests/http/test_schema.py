"""The schema module fed values directly: every field's accept/reject cases, the exact errors
a client would read, and the OpenAPI it writes. No server."""

from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from multidict import MultiDict, MultiDictProxy

from lab.http.errors import ValidationFailed
from lab.http.schema import (
    MISSING,
    Array,
    Boolean,
    DateTime,
    Email,
    Enum,
    Integer,
    Invalid,
    Object,
    Schema,
    String,
)

STATUS = Enum("pending", "in-progress", "completed")


def invalid(field, value, *, text=False):
    """The message ``field`` refuses ``value`` with (``text``: as a query-string value)."""
    with pytest.raises(Invalid) as caught:
        field.parse(value) if text else field.clean(value)
    return caught.value.message


def errors(schema, data, *, query=False):
    with pytest.raises(ValidationFailed) as caught:
        schema.validate_query(data) if query else schema.validate(data)
    return caught.value.errors


def error(path, message):
    return {"path": path, "message": message}


# -- Integer ---------------------------------------------------------------------------------

def test_integer_accepts_only_a_real_int():
    assert Integer().clean(8) == 8
    assert Integer().clean(-3) == -3
    for value in (8.0, 8.2, "8", True, False, [8], {"n": 8}):
        assert invalid(Integer(), value) == "must be an integer", value


def test_integer_null_is_refused_unless_nullable():
    assert invalid(Integer(), None) == "must not be null"
    assert Integer(nullable=True).clean(None) is None


def test_integer_bounds():
    field = Integer(minimum=1, maximum=100)
    assert field.clean(1) == 1
    assert field.clean(100) == 100
    assert invalid(field, 0) == "must be at least 1"
    assert invalid(field, 101) == "must be at most 100"


@pytest.mark.parametrize(("text", "value"), [("8", 8), ("-3", -3), ("0", 0), ("007", 7),
                                             ("9" * 18, 10**18 - 1)])
def test_integer_parse_accepts_plain_digits(text, value):
    assert Integer().parse(text) == value


@pytest.mark.parametrize("text", ["8.2", "8.0", " 8", "8 ", "+8", "", "-", "8e3", "1_000",
                                  "٣", "０", "8\n", "1" * 19, "1" * 5000, "true"])
def test_integer_parse_refuses_anything_else(text):
    assert invalid(Integer(), text, text=True) == "must be an integer"


def test_integer_parse_then_checks_bounds():
    assert invalid(Integer(minimum=1), "0", text=True) == "must be at least 1"


def test_integer_bounds_must_be_ordered():
    with pytest.raises(ValueError, match="above maximum"):
        Integer(minimum=5, maximum=1)


# -- String and Email ------------------------------------------------------------------------

def test_string_type_and_lengths_in_code_points():
    field = String(min_length=2, max_length=3)
    assert field.clean("été") == "été"
    assert field.clean("日本") == "日本"
    assert field.clean("👍🏽") == "👍🏽"  # two code points
    assert invalid(field, 5) == "must be a string"
    assert invalid(field, "é") == "must be at least 2 characters long"
    assert invalid(field, "日本語!") == "must be at most 3 characters long"


def test_string_messages_use_the_singular_for_one():
    assert invalid(String(min_length=1), "") == "must be at least 1 character long"
    assert invalid(String(max_length=1), "ab") == "must be at most 1 character long"


def test_string_is_not_trimmed_or_converted():
    assert String().clean("  a ") == "  a "
    assert String().parse("8") == "8"


def test_string_length_range_is_checked():
    with pytest.raises(ValueError):
        String(min_length=3, max_length=2)
    with pytest.raises(ValueError):
        String(min_length=-1)


@pytest.mark.parametrize("address", ["a@b.co", "first.last+tag@mail.example.org",
                                     "x!#$%&'*+-/=^_`{|}~@EXAMPLE.COM", "élodie@exemple.fr"])
def test_email_accepts(address):
    assert Email().clean(address) == address


@pytest.mark.parametrize("address", ["", "plain", "@b.co", "a@", "a@b", "a@b.", "a@.b",
                                     "a@@b.co", "a@b@c.co", "a b@c.co", "a@b .co", "a@b.co\n"])
def test_email_refuses(address):
    assert invalid(Email(), address) == "must be a valid email address"


def test_email_length_is_checked_first():
    assert invalid(Email(), "a" * 250 + "@b.co") == "must be at most 254 characters long"
    assert invalid(Email(), 7) == "must be a string"


@given(st.emails())
def test_email_accepts_every_address_hypothesis_makes(address):
    assume(len(address) <= 254)  # the SMTP limit, which Email enforces as max_length
    assert Email().clean(address) == address


# -- Enum, Boolean, DateTime -----------------------------------------------------------------

def test_enum():
    assert STATUS.clean("in-progress") == "in-progress"
    message = "must be one of: pending, in-progress, completed"
    for value in ("Pending", "", 1, ["pending"], {"a": 1}):
        assert invalid(STATUS, value) == message, value
    assert STATUS.parse("completed") == "completed"


def test_enum_choices_must_be_distinct_strings():
    for choices in ((), ("a", "a"), ("a", 1)):
        with pytest.raises(ValueError):
            Enum(*choices)


def test_boolean():
    assert Boolean().clean(True) is True
    assert Boolean().clean(False) is False
    for value in (0, 1, "true", "false", [True]):
        assert invalid(Boolean(), value) == "must be true or false", value
    assert invalid(Boolean(), None) == "must not be null"
    assert Boolean().parse("true") is True
    assert Boolean().parse("false") is False
    for text in ("True", "1", "yes", ""):
        assert invalid(Boolean(), text, text=True) == "must be true or false"


def test_datetime():
    moment = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert DateTime().clean(moment) is moment
    assert DateTime().clean("2024-05-01T12:30:00Z") == moment
    assert DateTime().clean("2024-05-01T12:30:00+00:00") == moment
    for value in ("yesterday", "2024-13-01T00:00:00Z", 1714566600, ""):
        assert invalid(DateTime(), value) == "must be an ISO-8601 date-time"
    assert DateTime().openapi() == {"type": "string", "format": "date-time"}


# -- Schema.validate -------------------------------------------------------------------------

TASK = Schema("TaskCreate", {
    "title": String(min_length=1, max_length=200),
    "status": Enum("pending", "in-progress", "completed", default="pending"),
    "priority": Integer(minimum=1, maximum=5, required=False),
    "note": String(nullable=True, required=False),
})


def test_valid_body_is_cleaned_and_defaults_filled():
    assert TASK.validate({"title": "Write tests"}) == {"title": "Write tests", "status": "pending"}
    body = {"title": "t", "status": "completed", "priority": 3, "note": None}
    assert TASK.validate(body) == body


def test_result_is_a_new_dict_and_input_is_untouched():
    body = {"title": "t"}
    result = TASK.validate(body)
    assert result is not body
    assert body == {"title": "t"}


def test_absent_optional_field_without_default_stays_absent():
    assert "priority" not in TASK.validate({"title": "t"})
    assert "note" not in TASK.validate({"title": "t"})


def test_list_default_is_not_shared_between_results():
    schema = Schema("Tagged", {"tags": Array(String(), default=[])})
    first = schema.validate({})
    first["tags"].append("x")
    assert schema.validate({}) == {"tags": []}


def test_not_a_dict_body():
    for body in ([], "x", 3, None, [{"title": "t"}]):
        assert errors(TASK, body) == [error("", "must be a JSON object")]


def test_every_problem_is_reported_in_order():
    body = {"zeta": 1, "priority": 9, "title": "", "status": "done", "note": 3, "alpha": 2}
    assert errors(TASK, body) == [
        error("title", "must be at least 1 character long"),
        error("status", "must be one of: pending, in-progress, completed"),
        error("priority", "must be at most 5"),
        error("note", "must be a string"),
        error("zeta", "is not allowed"),
        error("alpha", "is not allowed"),
    ]


def test_missing_required_field():
    assert errors(TASK, {}) == [error("title", "is required")]
    assert errors(TASK, {"title": None}) == [error("title", "must not be null")]


def test_unknown_fields_can_be_ignored():
    schema = Schema("Loose", {"a": Integer()}, unknown="ignore")
    assert schema.validate({"a": 1, "b": 2}) == {"a": 1}
    with pytest.raises(ValueError):
        Schema("Bad", {}, unknown="allow")


def test_at_least_one():
    schema = Schema("Patch", {"name": String(required=False), "email": Email(required=False)},
                    at_least_one=True)
    assert schema.validate({"email": "a@b.co"}) == {"email": "a@b.co"}
    assert errors(schema, {}) == [error("", "must have at least one of: name, email")]
    assert errors(schema, {"name": 5}) == [error("name", "must be a string")]  # given, if bad
    assert errors(schema, {"name": None}) == [error("name", "must not be null")]
    assert errors(schema, {"nick": "x"}) == [
        error("nick", "is not allowed"),
        error("", "must have at least one of: name, email"),
    ]


def test_partial_makes_every_field_optional_without_defaults():
    update = TASK.partial("TaskUpdate")
    assert update.name == "TaskUpdate"
    assert update.validate({"status": "completed"}) == {"status": "completed"}
    assert errors(update, {}) == [
        error("", "must have at least one of: title, status, priority, note")]
    assert errors(update, {"title": ""}) == [error("title", "must be at least 1 character long")]
    assert "required" not in update.openapi()
    assert update.openapi()["minProperties"] == 1
    assert TASK.validate({"title": "t"})["status"] == "pending"  # the original is unchanged


def test_a_bad_default_is_refused_when_the_schema_is_declared():
    with pytest.raises(ValueError, match="bad default"):
        Schema("Bad", {"limit": Integer(minimum=1, default=0)})


# -- Nested Object and Array -----------------------------------------------------------------

USER = Schema("User", {"name": String(min_length=1), "email": Email()})
POST = Schema("Post", {
    "author": Object(USER),
    "tags": Array(String(min_length=1), max_items=3, required=False),
    "reviewers": Array(Object(USER), required=False),
})


def test_nested_values_are_cleaned():
    body = {"author": {"name": "Ada", "email": "ada@example.org"}, "tags": ["a", "b"]}
    assert POST.validate(body) == body


def test_nested_error_paths():
    body = {
        "author": {"name": "", "age": 3},
        "tags": ["ok", "", 7],
        "reviewers": [{"name": "B", "email": "b@example.org"}, {"email": "nope"}],
    }
    assert errors(POST, body) == [
        error("author.name", "must be at least 1 character long"),
        error("author.email", "is required"),
        error("author.age", "is not allowed"),
        error("tags[1]", "must be at least 1 character long"),
        error("tags[2]", "must be a string"),
        error("reviewers[1].name", "is required"),
        error("reviewers[1].email", "must be a valid email address"),
    ]


def test_nested_shape_errors():
    assert errors(POST, {"author": "Ada", "tags": "a"}) == [
        error("author", "must be a JSON object"),
        error("tags", "must be an array"),
    ]
    assert errors(POST, {"author": {"name": "A", "email": "a@b.co"}, "tags": ["a"] * 4}) == [
        error("tags", "must have at most 3 items")]


def test_array_counts_and_nesting():
    field = Array(Array(Integer()), min_items=1)
    assert field.clean([[1], []]) == [[1], []]
    assert invalid(field, []) == "must have at least 1 item"
    with pytest.raises(ValidationFailed) as caught:
        field.clean([[1, "2"]])
    assert caught.value.errors == [error("[0][1]", "must be an integer")]
    with pytest.raises(ValueError):
        Array(String(), min_items=2, max_items=1)


# -- Schema.validate_query -------------------------------------------------------------------

LIST_QUERY = Schema("TaskQuery", {
    "page": Integer(minimum=1, default=1),
    "limit": Integer(minimum=1, maximum=100, default=20),
    "status": Enum("pending", "completed", required=False),
    "done": Boolean(required=False),
})


def test_query_values_are_parsed():
    assert LIST_QUERY.validate_query({"page": "3", "status": "pending", "done": "false"}) == {
        "page": 3, "limit": 20, "status": "pending", "done": False}
    assert LIST_QUERY.validate_query({}) == {"page": 1, "limit": 20}


def test_query_problems_are_collected():
    query = {"page": "0", "limit": "1" * 5000, "status": "x", "done": "yes", "sort": "id"}
    assert errors(LIST_QUERY, query, query=True) == [
        error("page", "must be at least 1"),
        error("limit", "must be an integer"),
        error("status", "must be one of: pending, completed"),
        error("done", "must be true or false"),
        error("sort", "is not allowed"),
    ]


def test_query_from_a_multidict():
    query = MultiDictProxy(MultiDict([("limit", "5"), ("page", "2")]))
    assert LIST_QUERY.validate_query(query) == {"page": 2, "limit": 5}


def test_query_key_given_twice():
    query = MultiDict([("limit", "5"), ("sort", "a"), ("limit", "x"), ("page", "0"),
                       ("sort", "b")])
    assert errors(LIST_QUERY, query, query=True) == [
        error("page", "must be at least 1"),
        error("limit", "must be given once"),
        error("sort", "is not allowed"),
    ]


def test_unknown_key_given_twice_is_ignored_when_unknown_is_ignore():
    schema = Schema("Loose", {"page": Integer()}, unknown="ignore")
    assert schema.validate_query(MultiDict([("page", "1"), ("x", "1"), ("x", "2")])) == {
        "page": 1}


def test_object_and_array_cannot_come_from_a_query_string():
    assert invalid(Array(String()), "a", text=True) == "cannot be given in a query string"
    assert invalid(Object(USER), "a", text=True) == "cannot be given in a query string"


# -- OpenAPI ---------------------------------------------------------------------------------

def test_field_openapi():
    assert Integer().openapi() == {"type": "integer"}
    assert Integer(minimum=1, maximum=100, default=20, description="Page size",
                   example=10).openapi() == {
        "type": "integer", "minimum": 1, "maximum": 100, "default": 20,
        "description": "Page size", "example": 10}
    assert String(min_length=1, max_length=200, nullable=True).openapi() == {
        "type": "string", "minLength": 1, "maxLength": 200, "nullable": True}
    assert Email().openapi() == {"type": "string", "maxLength": 254, "format": "email"}
    assert STATUS.openapi() == {"type": "string", "enum": ["pending", "in-progress", "completed"]}
    assert Boolean(default=False).openapi() == {"type": "boolean", "default": False}
    assert Array(Integer(), min_items=1, max_items=5).openapi() == {
        "type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 5}


def test_schema_openapi():
    assert TASK.openapi() == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "status": {"type": "string", "enum": ["pending", "in-progress", "completed"],
                       "default": "pending"},
            "priority": {"type": "integer", "minimum": 1, "maximum": 5},
            "note": {"type": "string", "nullable": True},
        },
        "required": ["title"],
        "additionalProperties": False,
    }
    loose = Schema("Loose", {"a": Integer(required=False)}, unknown="ignore", description="Any")
    assert loose.openapi() == {"type": "object", "properties": {"a": {"type": "integer"}},
                               "description": "Any"}


def test_nested_openapi():
    author = POST.openapi()["properties"]["author"]
    assert author == USER.openapi()
    assert author["required"] == ["name", "email"]
    assert POST.openapi()["properties"]["reviewers"]["items"] == USER.openapi()


def test_parameters():
    schema = Schema("Q", {"limit": Integer(maximum=100, default=20, description="Page size"),
                          "q": String()})
    assert schema.parameters() == [
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "maximum": 100, "default": 20,
                    "description": "Page size"},
         "description": "Page size"},
        {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
    ]
    assert Schema("P", {"id": Integer()}).parameters("path")[0]["in"] == "path"
    with pytest.raises(ValueError):
        schema.parameters("path")  # an optional path parameter is not valid OpenAPI
    with pytest.raises(ValueError):
        schema.parameters("body")


def test_repr():
    assert repr(TASK) == "Schema('TaskCreate', fields=['title', 'status', 'priority', 'note'])"
    assert repr(MISSING) == "MISSING"
