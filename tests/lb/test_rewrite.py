"""Heads rewritten for the next hop: pure, compared field by field."""

import pytest

from lab.lb.messages import Framing, Request, Response
from lab.lb.rewrite import answer_for_client, request_for_backend


def request(version=b"1.1", framing=Framing.EMPTY, headers=((b"Host", b"lab"),)):
    return Request(b"POST", b"/tasks?x=1", tuple(headers), version, framing)


def test_a_chunked_request_is_sent_on_chunked_as_http_1_1() -> None:
    sent, request_id = request_for_backend(
        request(framing=Framing.CHUNKED,
                headers=((b"Host", b"lab"), (b"Transfer-Encoding", b"chunked"),
                         (b"Connection", b"keep-alive, X-Hop"), (b"X-Hop", b"1"),
                         (b"Content-Type", b"application/json"))),
        client="10.0.0.7", backend="127.0.0.1:8001", new_id=lambda: b"id-1")
    assert (sent.method, sent.target, sent.version) == (b"POST", b"/tasks?x=1", b"1.1")
    assert request_id == b"id-1"
    assert sent.headers == ((b"Host", b"lab"), (b"Content-Type", b"application/json"),
                            (b"X-Forwarded-For", b"10.0.0.7"), (b"X-Forwarded-Proto", b"http"),
                            (b"X-Request-Id", b"id-1"), (b"Transfer-Encoding", b"chunked"))


def test_a_length_is_kept_and_an_http_1_0_client_without_host_gets_the_backends() -> None:
    sent, _ = request_for_backend(
        request(b"1.0", Framing.LENGTH, headers=((b"Content-Length", b"5"),)),
        client="127.0.0.1", backend="127.0.0.1:8001")
    assert sent.version == b"1.1"
    assert sent.headers[:1] == ((b"Content-Length", b"5"),)
    assert (b"Host", b"127.0.0.1:8001") in sent.headers
    assert not any(name == b"Transfer-Encoding" for name, _ in sent.headers)


LENGTH = Response(200, ((b"Content-Length", b"2"), (b"Connection", b"keep-alive"),
                        (b"Keep-Alive", b"timeout=5")), b"OK", b"1.1", Framing.LENGTH)
CHUNKED = Response(200, ((b"Transfer-Encoding", b"chunked"),), b"OK", b"1.1", Framing.CHUNKED)
UNTIL_CLOSE = Response(200, (), b"OK", b"1.0", Framing.UNTIL_CLOSE)


@pytest.mark.parametrize(("response", "version", "keep", "headers", "chunked", "kept"), [
    (LENGTH, b"1.1", True, ((b"Content-Length", b"2"),), False, True),
    (LENGTH, b"1.1", False, ((b"Content-Length", b"2"), (b"Connection", b"close")), False,
     False),
    (LENGTH, b"1.0", True, ((b"Content-Length", b"2"), (b"Connection", b"keep-alive")), False,
     True),
    (CHUNKED, b"1.1", True, ((b"Transfer-Encoding", b"chunked"),), True, True),
    (CHUNKED, b"1.0", True, ((b"Connection", b"close"),), False, False),  # no chunks in 1.0
    (UNTIL_CLOSE, b"1.1", True, ((b"Transfer-Encoding", b"chunked"),), True, True),
    (UNTIL_CLOSE, b"1.0", True, ((b"Connection", b"close"),), False, False),
])
def test_the_answer_is_framed_for_the_client(response, version, keep, headers, chunked,
                                             kept) -> None:
    head, is_chunked, keeps = answer_for_client(response, request(version), keep)
    assert (head.headers, is_chunked, keeps) == (headers, chunked, kept)
    assert (head.status, head.reason, head.version) == (200, b"OK", b"1.1")


def test_an_interim_answer_goes_to_http_1_1_clients_only() -> None:
    interim = Response(100, (), b"Continue", b"1.1", Framing.EMPTY)
    head, chunked, keep = answer_for_client(interim, request(b"1.1"), True)
    assert head.status == 100 and not chunked and keep
    assert answer_for_client(interim, request(b"1.0"), True)[0] is None
