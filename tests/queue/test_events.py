"""Task events: built, encoded and decoded back; every kind of bad message refused with a
short reason; and a property: whatever valid event is encoded, decoding gives it back."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.api.schemas import STATUSES
from lab.queue.events import (
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    MAX_REASON_LENGTH,
    SCHEMAS,
    TASK_CREATED,
    TASK_DELETED,
    TASK_UPDATED,
    InvalidEvent,
    TaskEvent,
    build_event,
    decode,
    encode,
    shorten,
)

NOW = datetime(2026, 12, 5, 9, 55, 39, 891438, tzinfo=UTC)
EVENT_ID = "0b6f7c1e-3d4a-4f5b-9c8d-1e2f3a4b5c6d"
TASK = {"id": 7, "title": "Write the report", "description": "", "status": "pending",
        "userId": 3, "categoryId": None, "createdAt": NOW, "updatedAt": NOW,
        "user": {"id": 3, "name": "Ada", "email": "ada@example.com"}, "category": None}


def event(kind: str = TASK_CREATED, task: dict = TASK) -> TaskEvent:
    return build_event(kind, task, clock=lambda: NOW, new_id=lambda: EVENT_ID)


def message(**changes) -> bytes:
    """A valid task.created body with top-level ``changes`` (a value None: the key removed)."""
    data = orjson.loads(encode(event()))
    data.update(changes)
    return orjson.dumps({key: value for key, value in data.items() if value is not None})


# building ---------------------------------------------------------------------
def test_a_created_event_carries_the_task_as_the_api_answers_it_without_embedded_resources():
    created = event()
    assert created == TaskEvent(EVENT_ID, TASK_CREATED, 1, NOW, "lab.api", {
        "id": 7, "title": "Write the report", "description": "", "status": "pending",
        "userId": 3, "categoryId": None, "createdAt": NOW, "updatedAt": NOW})


def test_a_deleted_event_carries_only_the_id():
    assert event(TASK_DELETED).payload == {"id": 7}
    assert event(TASK_DELETED, {"id": 7}).payload == {"id": 7}


def test_the_clock_and_the_id_are_injected_and_default_to_now_and_a_random_uuid():
    first, second = build_event(TASK_UPDATED, TASK), build_event(TASK_UPDATED, TASK)
    assert first.id != second.id and str(uuid.UUID(first.id)) == first.id
    assert timedelta(0) <= datetime.now(UTC) - first.occurred_at < timedelta(seconds=5)


def test_the_relay_builds_from_an_outbox_row_whose_payload_came_back_from_jsonb():
    """PostgreSQL's jsonb writes timestamptz as RFC 3339 text; the row has its own id."""
    payload = {**orjson.loads(orjson.dumps(TASK)), "createdAt": "2026-12-05T09:55:39.5+00:00"}
    built = build_event(TASK_UPDATED, payload, clock=lambda: NOW, new_id=lambda: EVENT_ID)
    assert built.payload["createdAt"] == datetime(2026, 12, 5, 9, 55, 39, 500000, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "task", "options", "reason"), [
    ("task.exploded", TASK, {}, 'unknown type: "task.exploded"'),
    (TASK_CREATED, {**TASK, "title": ""}, {}, "payload.title must be at least 1 character long"),
    (TASK_CREATED, {"id": 7}, {}, "payload.title is required; payload.description is required"),
    (TASK_CREATED, TASK, {"clock": lambda: datetime(2026, 1, 1)},
     "occurredAt must have a UTC offset"),
    (TASK_CREATED, TASK, {"new_id": lambda: "not-a-uuid"}, "id must be a UUID"),
    (TASK_CREATED, TASK, {"source": ""}, "source must be at least 1 character long"),
])
def test_the_producer_refuses_what_a_consumer_would(kind, task, options, reason):
    with pytest.raises(InvalidEvent) as caught:
        build_event(kind, task, **options)
    assert caught.value.reason.startswith(reason)


# round trips ------------------------------------------------------------------
@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_encode_then_decode_gives_the_event_back(kind):
    original = event(kind)
    body = encode(original)
    assert isinstance(body, bytes) and decode(body) == original


def test_the_wire_format():
    assert orjson.loads(encode(event())) == {
        "id": EVENT_ID, "type": "task.created", "version": 1,
        "occurredAt": "2026-12-05T09:55:39.891438+00:00", "source": "lab.api",
        "payload": {"id": 7, "title": "Write the report", "description": "",
                    "status": "pending", "userId": 3, "categoryId": None,
                    "createdAt": "2026-12-05T09:55:39.891438+00:00",
                    "updatedAt": "2026-12-05T09:55:39.891438+00:00"}}


@pytest.mark.parametrize(("text", "moment"), [
    ("2026-12-05T09:55:39Z", datetime(2026, 12, 5, 9, 55, 39, tzinfo=UTC)),
    ("2026-12-05T09:55:39.5+05:30",
     datetime(2026, 12, 5, 9, 55, 39, 500000, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
    ("2026-12-05T09:55:39-08:00",
     datetime(2026, 12, 5, 9, 55, 39, tzinfo=timezone(timedelta(hours=-8)))),
    ("2026-12-05T09:55:39.123456789Z",  # a Go producer's nanoseconds, truncated
     datetime(2026, 12, 5, 9, 55, 39, 123456, tzinfo=UTC)),
])
def test_every_rfc3339_spelling_is_read(text, moment):
    decoded = decode(message(occurredAt=text))
    assert decoded.occurred_at == moment
    assert decoded.occurred_at.utcoffset() == moment.utcoffset()  # the offset is kept


# each kind of bad message, and its reason ----------------------------------------
@pytest.mark.parametrize(("body", "reason"), [
    (b"", "malformed JSON: "),
    (b'{"id": ', "malformed JSON: "),
    (b"\xff\xfe", "malformed JSON: "),
    (b"[1, 2]", "not a JSON object"),
    (b'"task.created"', "not a JSON object"),
    (b"null", "not a JSON object"),
    (message(type=None), "type is required"),
    (message(type="task.exploded"), 'unknown type: "task.exploded"'),
    (message(type=7), "unknown type: 7"),
    (message(type=["task.created"]), 'unknown type: ["task.created"]'),
    (message(version=None), "version is required"),
    (message(version=2), "unknown version: 2"),
    (message(version="1"), 'unknown version: "1"'),
    (message(version=1.0), "unknown version: 1.0"),
    (message(version=True), "unknown version: true"),
    (message(id=None), "id is required"),
    (message(id="0B6F7C1E-3D4A-4F5B-9C8D-1E2F3A4B5C6D"), "id must be a UUID in lowercase"),
    (message(id="{0b6f7c1e-3d4a-4f5b-9c8d-1e2f3a4b5c6d}"), "id must be a UUID"),
    (message(id=12), "id must be a UUID"),
    (message(occurredAt=None), "occurredAt is required"),
    (message(occurredAt="2026-12-05T09:55:39"), "occurredAt must be an RFC 3339 date-time"),
    (message(occurredAt="2026-12-05 09:55:39Z"), "occurredAt must be an RFC 3339 date-time"),
    (message(occurredAt="20261205T095539Z"), "occurredAt must be an RFC 3339 date-time"),
    (message(occurredAt="2026-13-05T09:55:39Z"), "occurredAt must be an RFC 3339 date-time"),
    (message(occurredAt="2026-12-05T23:59:60Z"), "occurredAt must be an RFC 3339 date-time"),
    (message(occurredAt="2026-02-30T09:55:39Z"), "occurredAt must be an RFC 3339 date-time"),
    (message(occurredAt=1733392539), "occurredAt must be an RFC 3339 date-time"),
    (message(source=None), "source is required"),
    (message(payload=None), "payload is required"),
    (message(payload=[]), "payload must be a JSON object"),
    (message(payload={**TASK, "createdAt": NOW.isoformat(), "updatedAt": NOW.isoformat()}),
     "payload.user is not allowed; payload.category is not allowed"),
    (message(payload={"id": 7}), "payload.title is required; payload.description is required"),
    (message(payload={"id": 7, "title": "t", "description": "", "status": "done", "userId": 1,
                      "categoryId": None, "createdAt": "2026-12-05T09:55:39Z",
                      "updatedAt": "2026-12-05T09:55:39Z"}),
     "payload.status must be one of: pending, in-progress, completed"),
    (message(type="task.deleted"), "payload.title is not allowed"),
    (message(extra=1), "extra is not allowed"),
])
def test_each_kind_of_bad_message_is_refused_with_its_reason(body, reason):
    with pytest.raises(InvalidEvent) as caught:
        decode(body)
    assert caught.value.reason.startswith(reason), caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert "\n" not in caught.value.reason and len(caught.value.reason) <= MAX_REASON_LENGTH


def test_an_oversized_message_is_refused_before_it_is_parsed():
    body = b"[" * (MAX_EVENT_BYTES + 1)  # parsing this would be an error of another kind
    with pytest.raises(InvalidEvent, match=f"^too large: {MAX_EVENT_BYTES + 1} bytes"):
        decode(body)
    decode(message(source="s" * 100))  # near, but within, every limit


def test_the_largest_valid_event_fits_the_limit_with_room_to_spare():
    worst = {**TASK, "title": "\x01" * 200, "description": "\x01" * 1000}  # 6 bytes each
    body = encode(event(task=worst))
    assert len(body) < MAX_EVENT_BYTES / 2
    assert decode(body).payload["description"] == "\x01" * 1000


def test_the_producer_cannot_encode_what_the_consumer_would_refuse_for_size():
    huge = TaskEvent(EVENT_ID, TASK_CREATED, 1, NOW, "lab.api", {"blob": "x" * MAX_EVENT_BYTES})
    with pytest.raises(InvalidEvent, match=r"^too large"):
        encode(huge)


def test_a_long_reason_is_cut_to_one_short_line():
    body = message(type="task." + "x" * 10_000)
    with pytest.raises(InvalidEvent) as caught:
        decode(body)
    assert len(caught.value.reason) < 80 and caught.value.reason.endswith("...")
    assert shorten("a\n  b\tc") == "a b c"
    assert shorten("x" * 300) == "x" * 197 + "..."


def test_every_type_has_a_schema_for_the_current_version():
    assert set(SCHEMAS) == {(kind, 1) for kind in EVENT_TYPES}


# the property -----------------------------------------------------------------
characters = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
ids = st.integers(1, 2**31 - 1)
offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.builds(lambda naive, tz: naive.replace(tzinfo=tz),
                    st.datetimes(datetime(1970, 1, 1), datetime(9999, 12, 30)), offsets)
tasks = st.fixed_dictionaries({
    "id": ids, "title": st.text(characters, min_size=1, max_size=200),
    "description": st.text(characters, max_size=1000), "status": st.sampled_from(STATUSES),
    "userId": st.none() | ids, "categoryId": st.none() | ids,
    "createdAt": moments, "updatedAt": moments,
})


@given(kind=st.sampled_from(EVENT_TYPES), task=tasks, when=moments, event_id=st.uuids(),
       source=st.text(characters, min_size=1, max_size=100))
def test_any_valid_event_round_trips(kind, task, when, event_id, source):
    original = build_event(kind, task, source=source, clock=lambda: when,
                           new_id=lambda: str(event_id))
    decoded = decode(encode(original))
    assert decoded == original
    assert decoded.occurred_at.utcoffset() == when.utcoffset()  # the offset, not just the instant
