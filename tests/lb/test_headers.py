"""The header rewriting of the proxy, on plain tuples."""

import re

import pytest

from lab.lb.headers import (
    HOP_BY_HOP,
    add_forwarded_for,
    ensure_request_id,
    forward_request,
    new_request_id,
    set_header,
    strip_hop_by_hop,
)
from lab.lb.messages import header_tokens, header_values, wants_keep_alive


def test_every_hop_by_hop_field_goes_in_any_case():
    headers = (*((name.upper(), b"x") for name in HOP_BY_HOP), (b"Accept", b"*/*"))
    assert strip_hop_by_hop(headers) == ((b"Accept", b"*/*"),)


def test_fields_named_by_connection_go_and_the_rest_keep_order_and_case():
    headers = (
        (b"Host", b"api"),
        (b"Connection", b"keep-alive, X-Debug"),
        (b"connection", b"x-trace"),
        (b"x-debug", b"1"),
        (b"Set-Cookie", b"a=1"),
        (b"X-TRACE", b"2"),
        (b"Set-Cookie", b"b=2"),
        (b"Keep-Alive", b"timeout=5"),
    )
    assert strip_hop_by_hop(headers) == (
        (b"Host", b"api"), (b"Set-Cookie", b"a=1"), (b"Set-Cookie", b"b=2"))


def test_connection_cannot_remove_content_length_or_host():
    headers = ((b"Host", b"api"), (b"Connection", b"Content-Length, host"),
               (b"Content-Length", b"5"))
    assert strip_hop_by_hop(headers) == ((b"Host", b"api"), (b"Content-Length", b"5"))


def test_set_header_replaces_in_place_drops_duplicates_or_appends():
    headers = ((b"A", b"1"), (b"x-forwarded-proto", b"ftp"), (b"B", b"2"),
               (b"X-Forwarded-Proto", b"gopher"))
    assert set_header(headers, b"X-Forwarded-Proto", b"https") == (
        (b"A", b"1"), (b"x-forwarded-proto", b"https"), (b"B", b"2"))
    assert set_header((), b"X-A", b"1") == ((b"X-A", b"1"),)


@pytest.mark.parametrize(("name", "value"), [
    (b"X-A", b"1\r\nInjected: yes"), (b"X A", b"1"), (b"", b"1"), (b"X-A", b" 1"),
])
def test_set_header_refuses_what_would_break_the_head(name, value):
    with pytest.raises(ValueError):
        set_header((), name, value)


def test_forwarded_for_is_created_or_extended():
    assert add_forwarded_for((), "10.0.0.1") == ((b"X-Forwarded-For", b"10.0.0.1"),)
    headers = ((b"x-forwarded-for", b"1.1.1.1"), (b"Accept", b"*/*"),
               (b"X-Forwarded-For", b"2.2.2.2, 3.3.3.3"))
    assert add_forwarded_for(headers, "::1") == (
        (b"x-forwarded-for", b"1.1.1.1, 2.2.2.2, 3.3.3.3, ::1"), (b"Accept", b"*/*"))
    assert add_forwarded_for(((b"X-Forwarded-For", b""),), "10.0.0.1") == (
        (b"X-Forwarded-For", b"10.0.0.1"),)


def test_request_id_is_kept_or_made():
    headers = ((b"X-Request-Id", b"abc"),)
    assert ensure_request_id(headers, lambda: b"new") == (headers, b"abc")
    assert ensure_request_id((), lambda: b"new") == (((b"X-Request-Id", b"new"),), b"new")
    assert ensure_request_id(((b"x-request-id", b""),), lambda: b"new") == (
        ((b"x-request-id", b"new"),), b"new")


def test_new_request_id_is_32_hex_digits_like_nginx():
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(rb"[0-9a-f]{32}", i) for i in ids)


def test_forward_request_does_all_four_in_order():
    headers = ((b"Host", b"api"), (b"Connection", b"close, X-Secret"), (b"X-Secret", b"s"),
               (b"TE", b"trailers"), (b"X-Forwarded-For", b"203.0.113.9"),
               (b"X-Forwarded-Proto", b"https"), (b"Accept", b"*/*"))
    forwarded, request_id = forward_request(headers, client="192.0.2.1", new_id=lambda: b"id1")
    assert request_id == b"id1"
    assert forwarded == (
        (b"Host", b"api"), (b"X-Forwarded-For", b"203.0.113.9, 192.0.2.1"),
        (b"X-Forwarded-Proto", b"http"), (b"Accept", b"*/*"), (b"X-Request-Id", b"id1"))


def test_forward_request_refuses_an_unknown_scheme():
    with pytest.raises(ValueError, match="scheme"):
        forward_request((), client="192.0.2.1", scheme="ftp")


def test_header_lookups_are_case_insensitive():
    headers = ((b"Connection", b" Keep-Alive ,, UPGRADE"), (b"connection", b"x"), (b"A", b"1"))
    assert header_values(headers, b"CONNECTION") == [b" Keep-Alive ,, UPGRADE", b"x"]
    assert header_tokens(headers, b"connection") == [b"keep-alive", b"upgrade", b"x"]
    assert header_tokens(headers, b"missing") == []
    assert wants_keep_alive(b"1.0", headers)
    assert not wants_keep_alive(b"1.1", (*headers, (b"Connection", b"close")))
