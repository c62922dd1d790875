"""Paging fed values directly: the envelopes' arithmetic and the cursor's round trip.

A cursor comes from the client, so ``decode_cursor`` is fed everything a client could
send -- garbage, broken base64, JSON of the wrong shape -- and must answer each with a
``BadRequest`` (a 400), never with another exception (a 500).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.http.errors import BadRequest
from lab.http.pagination import (
    decode_cursor,
    encode_cursor,
    keyset_envelope,
    offset,
    page_envelope,
)

# -- page and limit -----------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "limit", "pages"), [
    (0, 10, 0),  # nothing: no page at all
    (1, 10, 1),
    (20, 10, 2),  # an exact multiple: no empty last page
    (21, 10, 3),  # a remainder: one short last page
    (99, 100, 1),
    (100, 1, 100),
])
def test_total_pages(total, limit, pages):
    assert page_envelope([], total, 1, limit)["totalPages"] == pages


def test_page_envelope_carries_everything_a_client_pages_with():
    items = [{"id": 3}, {"id": 4}]
    assert page_envelope(items, 21, 2, 2) == {
        "data": items, "total": 21, "page": 2, "limit": 2, "totalPages": 11}
    assert page_envelope([], 0, 1, 10)["totalPages"] == 0


def test_keyset_envelope_has_no_total():
    assert keyset_envelope([{"id": 1}], 5, None) == {
        "data": [{"id": 1}], "limit": 5, "nextCursor": None}


@pytest.mark.parametrize(("page", "limit", "skipped"), [
    (1, 10, 0), (2, 10, 10), (3, 20, 40), (1_000_000, 100, 99_999_900)])
def test_offset(page, limit, skipped):
    assert offset(page, limit) == skipped


@given(st.integers(0, 10_000), st.integers(1, 100))
def test_pages_of_an_offset_walk_hold_every_item_once(total, limit):
    pages = page_envelope([], total, 1, limit)["totalPages"]
    covered = [range(offset(p, limit), min(offset(p, limit) + limit, total))
               for p in range(1, pages + 1)]
    assert [i for page in covered for i in page] == list(range(total))
    assert all(covered)  # no empty page among them


# -- the cursor ---------------------------------------------------------------------------------

def test_a_cursor_round_trips_with_microseconds_and_utc():
    stamp = datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(stamp, 42)) == (stamp, 42)
    decoded, _ = decode_cursor(encode_cursor(stamp, 42))
    assert decoded.microsecond == 123456
    assert decoded.utcoffset() == timedelta(0)


def test_a_cursor_keeps_another_offset_and_the_same_instant():
    stamp = datetime(2024, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    decoded, item_id = decode_cursor(encode_cursor(stamp, 7))
    assert (decoded, item_id) == (stamp, 7)
    assert decoded.utcoffset() == timedelta(hours=5, minutes=30)


@given(st.datetimes(timezones=st.just(UTC)), st.integers(min_value=1, max_value=2**63 - 1))
def test_any_cursor_round_trips_and_is_url_safe(stamp, item_id):
    cursor = encode_cursor(stamp, item_id)
    assert cursor.isascii() and set(cursor) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")  # no "=", "+", "/"
    assert decode_cursor(cursor) == (stamp, item_id)


def b64(raw: bytes | str) -> str:
    raw = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


STAMP = "2024-05-17T12:30:45.123456+00:00"
MALFORMED = {
    "empty": "",
    "garbage": "not a cursor!",
    "only symbols": "!!!!",
    "one base64 character": "a",  # a length no base64 can have
    "non-ASCII": "curs\u00f6r",
    "padding in the middle": "ab=cd",
    "base64 of non-JSON": b64("hello, world"),
    "base64 of binary": b64(b"\xff\xfe\x00\x01"),
    "base64 of truncated JSON": b64(f'["{STAMP}", 4'),
    "an object": b64(json.dumps({"createdAt": STAMP, "id": 4})),
    "a two-key object": b64('{"a": 1, "b": 2}'),
    "a string of two characters": b64('"ab"'),
    "a number": b64("4"),
    "null": b64("null"),
    "an empty array": b64("[]"),
    "one element": b64(f'["{STAMP}"]'),
    "three elements": b64(f'["{STAMP}", 4, 5]'),
    "swapped": b64(f'[4, "{STAMP}"]'),
    "a null stamp": b64("[null, 4]"),
    "a stamp that is no date": b64('["yesterday", 4]'),
    "an impossible date": b64('["2024-02-30T00:00:00+00:00", 4]'),
    "a naive datetime": b64('["2024-05-17T12:30:45.123456", 4]'),
    "a date without time": b64('["2024-05-17", 4]'),
    "a string id": b64(f'["{STAMP}", "4"]'),
    "a bool id": b64(f'["{STAMP}", true]'),
    "a float id": b64(f'["{STAMP}", 4.0]'),
    "a null id": b64(f'["{STAMP}", null]'),
    "an id too large for 64 bits": b64(f'["{STAMP}", 123456789012345678901234567890]'),
    "an array id": b64(f'["{STAMP}", [4]]'),
    "deeply nested": b64("[" * 5000 + "]" * 5000),
}


@pytest.mark.parametrize("cursor", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_cursor_is_a_bad_request(cursor):
    with pytest.raises(BadRequest) as caught:
        decode_cursor(cursor)
    assert caught.value.status == 400
    assert caught.value.message == "Invalid cursor in 'after'"


def decodes_or_refuses(cursor: str) -> bool:
    """True if the cursor is refused with a 400, or decodes to an aware datetime and an
    int; any other exception escapes and fails the test."""
    try:
        stamp, item_id = decode_cursor(cursor)
    except BadRequest as refused:
        return refused.status == 400
    return isinstance(stamp, datetime) and stamp.tzinfo is not None and type(item_id) is int


@given(st.text())
def test_arbitrary_text_is_decoded_or_refused_never_a_crash(cursor):
    assert decodes_or_refuses(cursor)


@given(st.binary())
def test_base64_of_arbitrary_bytes_is_decoded_or_refused_never_a_crash(raw):
    assert decodes_or_refuses(b64(raw))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.datetimes().map(datetime.isoformat)
    | st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6)


@given(st.one_of(JSON_VALUES, st.tuples(JSON_VALUES, JSON_VALUES).map(list)))
def test_base64_of_any_json_is_decoded_or_refused_never_a_crash(value):
    assert decodes_or_refuses(b64(json.dumps(value)))
