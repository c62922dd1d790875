"""Task events on the wire: a versioned envelope, built, encoded and checked, with no I/O.

One message is one JSON object (``orjson``)::

    {"id": "9f0c...-...", "type": "task.created", "version": 1,
     "occurredAt": "2026-12-05T09:55:39.891438+00:00", "source": "lab.api",
     "payload": {"id": 7, "title": "...", "description": "", "status": "pending",
                 "userId": 3, "categoryId": null, "createdAt": "...", "updatedAt": "..."}}

``task.created`` and ``task.updated`` carry the task as the API answers it (the
user and category it embeds left out: they are other resources, with their own
life); ``task.deleted`` carries ``{"id": N}``, all that is left of it. ``id`` is a
UUID, the outbox row's id and the AMQP ``message_id`` too, and the key of the
consumer's idempotency table. The field names are the ones CloudEvents uses,
camel-cased as in the rest of the API.

Why a version: a consumer deployed before a producer must tell "a shape I do not
know" from "a broken message". ``SCHEMAS`` is keyed by ``(type, version)``; a
change that would break an old consumer gets a new version and a new row, and
the consumers learn it before the producers emit it. Unknown fields are refused
(as everywhere in the lab), so even an added field is a new version.

Validation is the lab's own ``Schema`` from ``lab/http`` -- the one that checks
request bodies -- with two fields it lacks: ``Uuid`` and ``Rfc3339``. The
producer's ``build_event`` runs the same check as the consumer's ``decode``, so
nothing is published that every consumer would refuse. A message that fails
becomes ``InvalidEvent`` with a one-line ``reason``, short enough for an AMQP
header (``x-error`` on the dead-letter queue): the consumer never retries it,
since the same bytes would fail the same way.

Limits: ``MAX_EVENT_BYTES`` is checked before parsing, so an oversized message
costs one ``len()``. Timestamps must carry an offset; fractions beyond
microseconds (a Go producer's nanoseconds) are accepted and truncated.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from lab.api.schemas import STATUSES, an_id
from lab.http.errors import ValidationFailed
from lab.http.schema import MISSING, Enum, Field, Integer, Invalid, Object, Schema, String

TASK_CREATED, TASK_UPDATED, TASK_DELETED = "task.created", "task.updated", "task.deleted"
EVENT_TYPES = (TASK_CREATED, TASK_UPDATED, TASK_DELETED)
VERSION = 1  # what build_event writes
SOURCE = "lab.api"
# The largest valid event is under 8 KiB: 1200 characters of title and description,
# each at most 6 bytes once escaped (\u0001), plus the envelope. Twice that is a bound no
# honest producer reaches, and a consumer refuses a 100 MB message before parsing it.
MAX_EVENT_BYTES = 16 * 1024
MAX_REASON_LENGTH = 200  # characters of InvalidEvent.reason: it travels in a header


class InvalidEvent(ValueError):
    """Bytes that are not a valid event; ``reason`` is one short line for a header or a log."""

    def __init__(self, reason: str):
        self.reason = shorten(reason)
        super().__init__(self.reason)


def shorten(text: str, limit: int = MAX_REASON_LENGTH) -> str:
    """``text`` on one line, at most ``limit`` characters: a traceback must not fill a header."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


# Two fields the HTTP layer did not need ---------------------------------------
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})")


class Uuid(String):
    """A UUID in its canonical text: lowercase, hyphenated, 36 characters -- one spelling
    per id, so the idempotency table can never hold the same id twice in two spellings."""

    __slots__ = ()

    def _check(self, value: Any) -> str:
        if not isinstance(value, str) or len(value) != 36:
            raise Invalid("must be a UUID")
        try:
            canonical = str(uuid.UUID(value))
        except ValueError:
            raise Invalid("must be a UUID") from None
        if canonical != value:
            raise Invalid("must be a UUID in lowercase")
        return value

    def _openapi_type(self) -> dict[str, Any]:
        return {"type": "string", "format": "uuid"}


class Rfc3339(Field):
    """An RFC 3339 timestamp with its offset, as text or as an aware ``datetime``.

    Stricter than ``DateTime``, which takes any ISO 8601 form Python reads (``20260101T00``,
    no offset): a timestamp without an offset means a different instant on every machine.
    """

    __slots__ = ()

    def _check(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            moment = value
        else:
            if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
                raise Invalid("must be an RFC 3339 date-time")
            try:  # 3.11's fromisoformat takes "Z" and truncates fractions past 6 digits
                moment = datetime.fromisoformat(value)
            except ValueError:  # month 13, second 60 (a leap second Python cannot hold)
                raise Invalid("must be an RFC 3339 date-time") from None
        if moment.utcoffset() is None:
            raise Invalid("must have a UTC offset")
        return moment

    def _openapi_type(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


# The schemas ------------------------------------------------------------------
TaskPayload = Schema("TaskPayload", {
    "id": an_id(), "title": String(min_length=1, max_length=200),
    "description": String(max_length=1000), "status": Enum(*STATUSES),
    "userId": an_id(nullable=True), "categoryId": an_id(nullable=True),
    "createdAt": Rfc3339(), "updatedAt": Rfc3339(),
})
DeletedPayload = Schema("DeletedPayload", {"id": an_id()})


def _envelope(kind: str, version: int, payload: Schema) -> Schema:
    return Schema(f"{kind}.v{version}", {
        "id": Uuid(), "type": Enum(kind), "version": Integer(minimum=version, maximum=version),
        "occurredAt": Rfc3339(), "source": String(min_length=1, max_length=100),
        "payload": Object(payload),
    })


SCHEMAS: dict[tuple[str, int], Schema] = {
    (TASK_CREATED, 1): _envelope(TASK_CREATED, 1, TaskPayload),
    (TASK_UPDATED, 1): _envelope(TASK_UPDATED, 1, TaskPayload),
    (TASK_DELETED, 1): _envelope(TASK_DELETED, 1, DeletedPayload),
}
VERSIONS = frozenset(version for _, version in SCHEMAS)


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """A valid event; timestamps are aware ``datetime`` objects (payload's too)."""

    id: str
    type: str
    version: int
    occurred_at: datetime
    source: str
    payload: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "version": self.version,
                "occurredAt": self.occurred_at, "source": self.source, "payload": self.payload}


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    return str(uuid.uuid4())  # random: ids from several API instances never collide


def build_event(kind: str, task: Mapping[str, Any], *, source: str = SOURCE,
                clock: Callable[[], datetime] = utc_now,
                new_id: Callable[[], str] = new_event_id) -> TaskEvent:
    """The event ``kind`` for ``task`` (a record as the API answers it), checked like a
    received one; InvalidEvent if it would be refused.

    Only the payload's fields are taken from ``task``, so the API's answer, with its
    embedded user and category, can be passed as it is. The relay, which publishes
    outbox rows, passes the row's: ``new_id=lambda: str(row["id"])``,
    ``clock=lambda: row["occurred_at"]``.
    """
    if kind not in EVENT_TYPES:
        raise InvalidEvent(f"unknown type: {_show(kind)}")
    schema = SCHEMAS[kind, VERSION]
    keys = DeletedPayload.fields if kind == TASK_DELETED else TaskPayload.fields
    payload = {key: task.get(key, MISSING) for key in keys}
    payload = {key: value for key, value in payload.items() if value is not MISSING}
    return _checked(schema, {"id": new_id(), "type": kind, "version": VERSION,
                             "occurredAt": clock(), "source": source, "payload": payload})


def encode(event: TaskEvent) -> bytes:
    """The message body. Refuses what ``decode`` would refuse for its size."""
    body = orjson.dumps(event.as_json())  # datetimes as RFC 3339, offset kept
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidEvent(_too_large(len(body)))
    return body


def decode(body: bytes) -> TaskEvent:
    """The event in a message body, or InvalidEvent saying what is wrong with it.

    The checks run cheapest first: the size, the JSON, the type and version (which pick
    the schema), then every field.
    """
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidEvent(_too_large(len(body)))
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:  # also invalid UTF-8
        raise InvalidEvent(f"malformed JSON: {error}") from None
    if type(data) is not dict:
        raise InvalidEvent("not a JSON object")
    kind, version = data.get("type"), data.get("version")
    if kind is None:
        raise InvalidEvent("type is required")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise InvalidEvent(f"unknown type: {_show(kind)}")
    if version is None:
        raise InvalidEvent("version is required")
    if type(version) is not int or version not in VERSIONS:  # not bool, not 1.0
        raise InvalidEvent(f"unknown version: {_show(version)}")
    return _checked(SCHEMAS[kind, version], data)


def _checked(schema: Schema, data: dict[str, Any]) -> TaskEvent:
    try:
        clean = schema.validate(data)
    except ValidationFailed as failed:
        raise InvalidEvent("; ".join(f"{error['path']} {error['message']}".strip()
                                     for error in failed.errors)) from None
    return TaskEvent(clean["id"], clean["type"], clean["version"], clean["occurredAt"],
                     clean["source"], clean["payload"])


def _show(value: Any) -> str:
    """``value`` as JSON, as it came (``"2"``, not ``'2'``), cut short."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # build_event's caller may pass anything
        text = repr(value)
    return shorten(text, 60)


def _too_large(size: int) -> str:
    return f"too large: {size} bytes, the limit is {MAX_EVENT_BYTES}"
