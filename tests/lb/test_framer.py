"""The framers fed bytes: no sockets. Every example is fed whole, split in two at every
byte boundary, and one byte at a time, and must give the same events (once adjacent
``Data`` pieces are joined) and the same error."""

from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.lb.framer import RequestFramer, ResponseFramer
from lab.lb.messages import (
    LAST_CHUNK,
    Data,
    EndOfMessage,
    Framing,
    ProtocolError,
    Request,
    Response,
    encode_chunk,
    encode_head,
)

Outcome = tuple[list, tuple[int, str] | None]


def merged(events: list) -> list:
    """Adjacent Data joined: how a body was cut into pieces depends on the reads."""
    out: list = []
    for event in events:
        assert not isinstance(event, Data) or event.data, "a Data event is never empty"
        if isinstance(event, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def run(framer, pieces: list[bytes], eof: bool = False) -> Outcome:
    events: list = []
    try:
        for piece in pieces:
            events += framer.feed(piece)
        if eof:
            events += framer.feed_eof()
    except ProtocolError as error:
        return merged(events + error.events), (error.status, error.message)
    return merged(events), None


def splits(data: bytes) -> Iterator[list[bytes]]:
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]
    yield [data[i : i + 1] for i in range(len(data))]


def parse(make: Callable[[], object], data: bytes, eof: bool = False) -> Outcome:
    """What ``data`` frames into, after checking that every way of splitting it agrees."""
    whole = run(make(), [data], eof)
    for pieces in splits(data):
        assert run(make(), pieces, eof) == whole, [len(p) for p in pieces]
    return whole


def responses_to(*methods: bytes, **limits) -> Callable[[], ResponseFramer]:
    def make() -> ResponseFramer:
        framer = ResponseFramer(**limits)
        for method in methods:
            framer.expect(method)
        return framer
    return make


GET = b"GET /tasks?page=2 HTTP/1.1\r\nHost: api\r\nAccept: */*\r\n\r\n"
GET_HEAD = Request(b"GET", b"/tasks?page=2", ((b"Host", b"api"), (b"Accept", b"*/*")))
POST = b"POST /tasks HTTP/1.1\r\nhost: api\r\nContent-Length: 11\r\n\r\n{\"a\": \"b\"}\n"
POST_HEAD = Request(b"POST", b"/tasks", ((b"host", b"api"), (b"Content-Length", b"11")),
                    framing=Framing.LENGTH)
CHUNKED = (b"PUT /tasks/1 HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;name=value;flag\r\nhello\r\n"
           b"1 ; spaced-ext\r\n,\r\n"
           b"A\r\n world!!!!\r\n"
           b"0\r\nX-Checksum: abc\r\nX-Other:  x \r\n\r\n")
CHUNKED_HEAD = Request(b"PUT", b"/tasks/1", ((b"Host", b"api"), (b"Transfer-Encoding", b"chunked")),
                       framing=Framing.CHUNKED)


def test_a_get_without_body():
    assert parse(RequestFramer, GET) == ([GET_HEAD, EndOfMessage()], None)


def test_a_body_framed_by_content_length():
    assert parse(RequestFramer, POST) == ([POST_HEAD, Data(b'{"a": "b"}\n'), EndOfMessage()], None)


def test_chunked_body_is_decoded_and_extensions_and_trailers_skipped():
    events, error = parse(RequestFramer, CHUNKED)
    assert error is None
    assert events == [CHUNKED_HEAD, Data(b"hello, world!!!!"), EndOfMessage()]


def test_chunk_sizes_are_hex_in_any_case_and_may_have_leading_zeros():
    data = (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
            + b"0a\r\n" + b"x" * 10 + b"\r\nA\r\n" + b"y" * 10 + b"\r\n000\r\n\r\n")
    events, error = parse(RequestFramer, data)
    assert error is None and events[1:] == [Data(b"x" * 10 + b"y" * 10), EndOfMessage()]


def test_pipelined_requests_come_out_in_order():
    stream = GET + POST + CHUNKED + b"\r\n" + GET  # a stray CRLF between requests is skipped
    events, error = parse(RequestFramer, stream)
    assert error is None
    assert events == [GET_HEAD, EndOfMessage(),
                      POST_HEAD, Data(b'{"a": "b"}\n'), EndOfMessage(),
                      CHUNKED_HEAD, Data(b"hello, world!!!!"), EndOfMessage(),
                      GET_HEAD, EndOfMessage()]


def test_empty_lines_before_a_request_are_ignored():
    assert parse(RequestFramer, b"\r\n\r\n" + GET) == ([GET_HEAD, EndOfMessage()], None)


def test_header_names_keep_their_case_and_values_are_trimmed():
    data = b"GET / HTTP/1.1\r\nHOST:\t api \t\r\nX-Empty:\r\nx-a: 1\r\nX-A: 2 ,3\r\n\r\n"
    [head, _], _ = parse(RequestFramer, data)
    assert head.headers == ((b"HOST", b"api"), (b"X-Empty", b""), (b"x-a", b"1"), (b"X-A", b"2 ,3"))


def test_http_1_0_request_without_host_and_with_keep_alive():
    data = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n" + b"GET /2 HTTP/1.0\r\n\r\n"
    events, error = parse(RequestFramer, data)
    assert error is None
    assert [e.target for e in events if isinstance(e, Request)] == [b"/", b"/2"]
    assert events[0].version == b"1.0" and events[0].keep_alive
    assert not events[2].keep_alive


@pytest.mark.parametrize(("version", "connection", "keep_alive"), [
    (b"1.1", None, True),
    (b"1.1", b"close", False),
    (b"1.1", b"keep-alive, Close", False),
    (b"1.1", b"Upgrade", True),
    (b"1.0", None, False),
    (b"1.0", b"keep-alive", True),
    (b"1.0", b"KEEP-ALIVE", True),
    (b"1.0", b"keep-alive, close", False),
])
def test_keep_alive_rules(version, connection, keep_alive):
    head = b"GET / HTTP/%s\r\nHost: h\r\n" % version
    if connection is not None:
        head += b"Connection: %s\r\n" % connection
    framer = RequestFramer()
    events = framer.feed(head + b"\r\n" + GET)  # a pipelined request after it
    assert events[0].keep_alive is keep_alive
    assert framer.keep_alive is keep_alive
    # After a message that closes the connection, nothing more is processed (RFC 9112 9.6).
    assert len(events) == (4 if keep_alive else 2)


def test_bytes_after_a_closing_request_are_ignored_even_garbage():
    framer = RequestFramer()
    events = framer.feed(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGARBAGE\r\n\r\n")
    assert len(events) == 2 and not framer.keep_alive
    assert framer.feed(b"more garbage\r\n\r\n") == []
    assert framer.feed_eof() == []


def host(line: bytes = b"GET / HTTP/1.1") -> bytes:
    return line + b"\r\nHost: h\r\n"


@pytest.mark.parametrize(("data", "status", "message"), [
    (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", 400, "bare LF"),  # binary junk
    (b"GET  / HTTP/1.1\r\n\r\n", 400, "malformed request line"),
    (b"GET / HTTP/1.1 \r\n\r\n", 400, "malformed request line"),
    (b"G(T / HTTP/1.1\r\n\r\n", 400, "malformed request line"),
    (b"GET /\x7f HTTP/1.1\r\n\r\n", 400, "malformed request line"),
    (b"GET / http/1.1\r\n\r\n", 400, "malformed request line"),
    (b"GET / HTTP/2.0\r\n\r\n", 505, "version"),
    (b"GET / HTTP/1.1\nHost: h\n\n", 400, "bare LF"),
    (host() + b"X: a\nY: b\r\n\r\n", 400, "bare LF"),
    (host() + b"No colon here\r\n\r\n", 400, "malformed header field"),
    (host() + b": empty name\r\n\r\n", 400, "malformed header field"),
    (host() + b"X-Forwarded-For : 1.2.3.4\r\n\r\n", 400, "malformed header field"),
    (host() + b"X-A: 1\r\n continued\r\n\r\n", 400, "obs-fold"),
    (host() + b"X-A: 1\r\n\tcontinued\r\n\r\n", 400, "obs-fold"),
    (host() + b"X-A: a\rb\r\n\r\n", 400, "invalid character"),
    (host() + b"X-A: a\x00b\r\n\r\n", 400, "invalid character"),
    (b"GET / HTTP/1.1\r\n\r\n", 400, "Host"),
    (host() + b"Host: h2\r\n\r\n", 400, "Host"),
    (b"CONNECT api:443 HTTP/1.1\r\nHost: api:443\r\n\r\n", 501, "CONNECT"),
])
def test_malformed_requests(data, status, message):
    events, error = parse(RequestFramer, data)
    assert events == []
    assert error is not None and error[0] == status and message in error[1]


POST_LINE = b"POST / HTTP/1.1"


@pytest.mark.parametrize(("fields", "status", "message"), [
    # Request smuggling: two parsers must never disagree on where the body ends.
    (b"Content-Length: 3\r\nTransfer-Encoding: chunked", 400, "both"),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 3", 400, "both"),
    (b"Content-Length: 3\r\nContent-Length: 4", 400, "differing"),
    (b"Content-Length: 3, 4", 400, "differing"),
    (b"Content-Length: +3", 400, "malformed Content-Length"),
    (b"Content-Length: -1", 400, "malformed Content-Length"),
    (b"Content-Length: 0x10", 400, "malformed Content-Length"),
    (b"Content-Length: 3 3", 400, "malformed Content-Length"),
    (b"Content-Length: ", 400, "malformed Content-Length"),
    (b"Content-Length: 3,", 400, "malformed Content-Length"),
    (b"Content-Length: \xd9\xa3", 400, "malformed Content-Length"),  # Arabic-Indic three
    (b"Content-Length: 1234567890123456789", 400, "malformed Content-Length"),
    (b"Transfer-Encoding: gzip", 400, "must end with a single chunked"),
    (b"Transfer-Encoding: chunked, gzip", 400, "must end with a single chunked"),
    (b"Transfer-Encoding: chunked, chunked", 400, "must end with a single chunked"),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400, "single chunked"),
    (b"Transfer-Encoding: ", 400, "must end with a single chunked"),
    (b"Transfer-Encoding: xchunked", 400, "must end with a single chunked"),
    (b"Transfer-Encoding: gzip, chunked", 501, "not supported"),
    (b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked", 501, "not supported"),
])
def test_ambiguous_framing_is_refused(fields, status, message):
    events, error = parse(RequestFramer, host(POST_LINE) + fields + b"\r\n\r\n0\r\n\r\n")
    assert events == []
    assert error is not None and error[0] == status and message in error[1]


def test_transfer_encoding_in_http_1_0_is_refused():
    data = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert parse(RequestFramer, data)[1] == (400, "Transfer-Encoding in an HTTP/1.0 message")


def test_repeated_equal_content_lengths_are_one_length():
    data = host(POST_LINE) + b"Content-Length: 2, 2\r\ncontent-length: 2\r\n\r\nok"
    events, error = parse(RequestFramer, data)
    assert error is None and events[1:] == [Data(b"ok"), EndOfMessage()]


def test_transfer_coding_names_are_case_insensitive_and_lists_may_have_empty_elements():
    data = host(POST_LINE) + b"Transfer-Encoding: , CHUNKED ,\r\n\r\n1\r\nx\r\n0\r\n\r\n"
    events, error = parse(RequestFramer, data)
    assert error is None and events[1:] == [Data(b"x"), EndOfMessage()]


CHUNKED_POST = host(POST_LINE) + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(("body", "message"), [
    (b"x\r\n", "malformed chunk size line"),
    (b"-1\r\n", "malformed chunk size line"),
    (b"\r\n", "malformed chunk size line"),
    (b" 5\r\nhello\r\n0\r\n\r\n", "malformed chunk size line"),
    (b"5;ext\x00\r\nhello\r\n0\r\n\r\n", "malformed chunk size line"),
    (b"1000000000000000\r\n", "malformed chunk size line"),  # 16 hex digits
    (b"5\r\nhelloX\r\n", "chunk data not followed by CRLF"),
    (b"5\r\nhello\rX", "chunk data not followed by CRLF"),
    (b"5\nhello\r\n", "bare LF"),
    (b"0\r\nbad trailer\r\n\r\n", "malformed header field"),
    (b"0\r\n folded: trailer\r\n\r\n", "obs-fold"),
])
def test_malformed_chunks(body, message):
    events, error = parse(RequestFramer, CHUNKED_POST + body)
    assert error is not None and error[0] == 400 and message in error[1]
    assert isinstance(events[0], Request)  # the head came out, the end of the body never did
    assert EndOfMessage() not in events


LIMITS = {"max_head_size": 64, "max_line_size": 32}


@pytest.mark.parametrize(("data", "status", "message"), [
    (b"GET /" + b"a" * 19 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414, "request line too long"),
    (b"GET /" + b"a" * 19 + b" HTTP/1.1\r\n", 414, "request line too long"),
    (b"GET /" + b"a" * 28, 414, "request line too long"),  # refused before the line ends
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 30 + b"\r\n", 431, "header line too long"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 30, 431, "header line too long"),
    (b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X: 123456789\r\n" * 3, 431, "header section too large"),
    (b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X: 123456789\r\n" * 2 + b"X: 12345\r\n\r\n", 431,
     "header section too large"),  # only the final CRLF does not fit
])
def test_oversized_heads(data, status, message):
    events, error = parse(lambda: RequestFramer(**LIMITS), data)
    assert events == [] and error == (status, message)


def test_a_head_of_exactly_the_limits_is_accepted():
    line = b"GET /" + b"a" * 18 + b" HTTP/1.1"  # 32 bytes: max_line_size
    data = line + b"\r\nHost: h\r\n" + b"X: " + b"v" * 14 + b"\r\n\r\n"  # 64 bytes: max_head_size
    assert len(line) == 32 and len(data) == 64
    events, error = parse(lambda: RequestFramer(**LIMITS), data)
    assert error is None and len(events) == 2


def test_trailers_are_bounded_too():
    body = b"0\r\n" + b"T: 123456789\r\n" * 5 + b"\r\n"
    _, error = parse(lambda: RequestFramer(**LIMITS), CHUNKED_POST + body)
    assert error == (431, "trailer section too large")


def test_a_line_that_never_ends_is_refused_at_the_limit_not_later():
    framer = RequestFramer(**LIMITS)
    framer.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX: ")
    for _ in range(29):
        framer.feed(b"v")  # the line is 32 bytes long: still allowed
        assert len(framer._buf) <= 32
    with pytest.raises(ProtocolError, match="header line too long"):
        framer.feed(b"v")


def test_a_body_is_streamed_never_buffered():
    framer = RequestFramer()
    events = framer.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3000000\r\n\r\n")
    for _ in range(3):
        events = framer.feed(b"x" * 1_000_000)
        assert events[0] == Data(b"x" * 1_000_000)
        assert len(framer._buf) == 0
    assert events[-1] == EndOfMessage()


@pytest.mark.parametrize("data", [
    host(POST_LINE) + b"Content-Length: 11\r\n\r\n",
    host(POST_LINE) + b"Transfer-Encoding: chunked\r\n\r\n6\r\nhello!\r\n5\r\nworld\r\n",
])
def test_max_body_size_gives_413_as_soon_as_announced(data):
    _, error = parse(lambda: RequestFramer(max_body_size=10), data)
    assert error == (413, "request body too large")


def test_a_body_of_exactly_max_body_size_is_accepted():
    data = CHUNKED_POST + b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"
    events, error = parse(lambda: RequestFramer(max_body_size=10), data)
    assert error is None and events[1:] == [Data(b"helloworld"), EndOfMessage()]


def test_an_error_keeps_the_events_before_it_and_the_framer_stays_dead():
    framer = RequestFramer()
    with pytest.raises(ProtocolError) as caught:
        framer.feed(GET + b"BAD REQUEST\r\n\r\n")
    assert caught.value.events == [GET_HEAD, EndOfMessage()]
    assert caught.value.status == 400
    with pytest.raises(ProtocolError) as again:
        framer.feed(GET)
    assert again.value.events == [] and again.value.message == caught.value.message
    assert "failed" in repr(framer)


def test_end_of_stream():
    framer = RequestFramer()
    assert framer.idle and framer.feed_eof() == []
    with pytest.raises(ValueError, match="after feed_eof"):
        framer.feed(GET)
    half = RequestFramer()
    half.feed(POST[:-3])
    with pytest.raises(ProtocolError, match="in the middle of a message") as caught:
        half.feed_eof()
    assert caught.value.status == 400


def test_idle_and_repr():
    framer = RequestFramer()
    framer.feed(GET[:5])
    assert not framer.idle
    assert repr(framer) == "RequestFramer(state=head, buffered=5, keep_alive=True)"
    framer.feed(GET[5:])
    assert framer.idle


@pytest.mark.parametrize("kwargs", [
    {"max_head_size": 0}, {"max_line_size": -1}, {"max_body_size": 0},
    {"max_head_size": True}, {"max_head_size": 100, "max_line_size": 97},
])
def test_bad_limits(kwargs):
    with pytest.raises(ValueError):
        RequestFramer(**kwargs)


# -- responses


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def response(status: int, reason: bytes, headers=(), framing=Framing.EMPTY, version=b"1.1"):
    return Response(status, tuple(headers), reason, version, framing)


def test_response_framed_by_content_length():
    events, error = parse(responses_to(b"GET"), OK)
    assert error is None
    assert events == [response(200, b"OK", [(b"Content-Length", b"5")], Framing.LENGTH),
                      Data(b"hello"), EndOfMessage()]


def test_response_to_head_has_no_body_whatever_it_says():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + OK
    events, error = parse(responses_to(b"HEAD", b"GET"), data)
    assert error is None
    assert events[:2] == [response(200, b"OK", [(b"Content-Length", b"5")]), EndOfMessage()]
    assert events[2:] == [events[2], Data(b"hello"), EndOfMessage()]


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body(status):
    data = b"HTTP/1.1 %d X\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n" % status
    events, error = parse(responses_to(b"GET", b"GET"), data + OK)
    assert error is None
    assert events[0].framing is Framing.EMPTY and events[1] == EndOfMessage()
    assert events[3:] == [Data(b"hello"), EndOfMessage()]


def test_interim_responses_come_before_the_final_one():
    data = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
            + OK)
    framer = responses_to(b"POST", b"GET")
    events, error = parse(framer, data + OK)
    assert error is None
    assert [e.status for e in events if isinstance(e, Response)] == [100, 103, 200, 200]
    assert events[:2] == [response(100, b"Continue"), EndOfMessage()]


def test_a_response_without_length_runs_until_the_close():
    data = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of\r\nthis\r\n\r\n"
    events, error = parse(responses_to(b"GET"), data, eof=True)
    assert error is None
    assert events == [response(200, b"OK", [(b"Content-Type", b"text/plain")],
                               Framing.UNTIL_CLOSE, b"1.0"),
                      Data(b"all of\r\nthis\r\n\r\n"), EndOfMessage()]
    assert not events[0].keep_alive


def test_status_line_without_reason():
    for line in (b"HTTP/1.1 200", b"HTTP/1.1 200 "):
        events, error = parse(responses_to(b"GET"), line + b"\r\nContent-Length: 0\r\n\r\n")
        assert error is None and events[0].reason == b""


def test_chunked_response_then_keep_alive_and_idle():
    framer = responses_to(b"GET")()
    events = framer.feed(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"3\r\nabc\r\n0\r\n\r\n")
    assert events[1:] == [Data(b"abc"), EndOfMessage()]
    assert framer.keep_alive and framer.idle
    framer.expect(b"GET")
    assert not framer.idle


def test_http_1_0_response_with_keep_alive():
    data = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"
    events, error = parse(responses_to(b"GET", b"GET"), data + OK)
    assert error is None and events[0].keep_alive and len(events) == 6


def test_a_closing_response_ends_the_connection():
    framer = responses_to(b"GET")()
    framer.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert not framer.keep_alive


@pytest.mark.parametrize(("methods", "data", "message"), [
    ((b"GET",), b"HTTP/1.1 200\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
     "both"),
    ((b"GET",), b"HTTP/1.1 OK\r\n\r\n", "malformed status line"),
    ((b"GET",), b"HTTP/1.1 099 Low\r\n\r\n", "malformed status line"),
    ((b"GET",), b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"),
    ((b"GET",), b"HTTP/3.0 200 OK\r\n\r\n", "version"),
    ((b"GET",), b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n\r\n", "upgrades"),
    ((b"GET",), b"HTTP/1.1 200 OK\r\nX-Long: " + b"v" * 40 + b"\r\n\r\n", "header line too long"),
    ((b"GET",), b"HTTP/1.1 200 OK " + b"v" * 40 + b"\r\n", "status line too long"),
    ((), b"HTTP/1.1 200 OK\r\n\r\n", "no request outstanding"),
    ((b"GET",), OK + b"HTTP/1.1 200 OK\r\n\r\n", "no request outstanding"),
])
def test_bad_responses_are_502(methods, data, message):
    _, error = parse(responses_to(*methods, **LIMITS), data)
    assert error is not None and error[0] == 502 and message in error[1]


def test_a_backend_that_closes_before_answering():
    framer = responses_to(b"GET")()
    with pytest.raises(ProtocolError, match="before the response began") as caught:
        framer.feed_eof()
    assert caught.value.status == 502
    midway = responses_to(b"GET")()
    midway.feed(OK[:-1])
    with pytest.raises(ProtocolError, match="in the middle of a message"):
        midway.feed_eof()


# -- encoders, and the property that ties them to the framers


def test_encode_head_and_chunks():
    head = Request(b"POST", b"/tasks", ((b"Host", b"api"), (b"Transfer-Encoding", b"chunked")))
    wire = encode_head(head) + encode_chunk(b"hello") + encode_chunk(b"x" * 26) + LAST_CHUNK
    assert wire == (b"POST /tasks HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n1a\r\n" + b"x" * 26 + b"\r\n0\r\n\r\n")
    assert encode_head(Response(404, reason=b"Not Found", version=b"1.0")) == (
        b"HTTP/1.0 404 Not Found\r\n\r\n")


@pytest.mark.parametrize("head", [
    Request(b"GET", b"/", ((b"X-A", b"1\r\nInjected: yes"),)),
    Request(b"GET", b"/", ((b"X A", b"1"),)),
    Request(b"GET", b"/", ((b"X-A", b" padded"),)),
    Request(b"GET", b"/ HTTP/1.1\r\nHost: evil\r\n\r\nGET /", ()),
    Request(b"G T", b"/"),
    Request(b"GET", b"/", version=b"2"),
    Response(200, reason=b"OK\r\n"),
    Response(42),
])
def test_encode_head_refuses_what_would_not_parse_back(head):
    with pytest.raises(ValueError):
        encode_head(head)


def test_an_empty_chunk_is_refused():
    with pytest.raises(ValueError, match="LAST_CHUNK"):
        encode_chunk(b"")


_NAME = st.text("abcxyzABC0123-_!#", min_size=1, max_size=8).map(str.encode).filter(
    lambda n: n.lower() not in (b"host", b"content-length", b"transfer-encoding", b"connection"))
_VALUE = st.binary(max_size=12).map(
    lambda b: bytes(c for c in b if c in b"\t " or 0x21 <= c <= 0x7E or c >= 0x80).strip(b" \t"))
_FIELDS = st.lists(st.tuples(_NAME, _VALUE), max_size=4)
_BODY = st.lists(st.binary(min_size=1, max_size=20), max_size=4)  # chunks of a body


@st.composite
def wire_messages(draw, side: str):
    """(events expected, bytes) for one message that a keep-alive connection can carry."""
    headers = draw(_FIELDS)
    chunks = draw(_BODY)
    body = b"".join(chunks)
    framing = draw(st.sampled_from([Framing.LENGTH, Framing.CHUNKED]))
    if side == "request" and not body and draw(st.booleans()):
        framing = Framing.EMPTY
    if framing is Framing.LENGTH:
        headers.append((draw(st.sampled_from([b"Content-Length", b"content-length"])),
                        b"%d" % len(body)))
    elif framing is Framing.CHUNKED:
        headers.append((b"Transfer-Encoding", b"chunked"))
    if side == "request":
        method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH"]))
        target = draw(st.sampled_from([b"/", b"/tasks", b"/tasks/1?x=%20y", b"*"]))
        head = Request(method, target, ((b"Host", b"api"), *headers), framing=framing)
    else:
        status = draw(st.sampled_from([200, 201, 400, 404, 500, 503]))
        reason = draw(st.sampled_from([b"", b"OK", b"Some Reason"]))
        head = Response(status, tuple(headers), reason, framing=framing)
    if framing is Framing.CHUNKED:
        wire_body = b"".join(map(encode_chunk, chunks)) + LAST_CHUNK
    else:
        wire_body = body
    events = [head, *([Data(body)] if body else []), EndOfMessage()]
    return events, encode_head(head) + wire_body


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(["request", "response"]))
def test_encoded_messages_parse_back_under_any_split(data, side):
    messages = data.draw(st.lists(wire_messages(side), min_size=1, max_size=4))
    stream = b"".join(wire for _, wire in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    framer = framer_for(side, len(messages))
    events, error = run(framer, pieces)
    assert error is None
    assert events == [event for expected, _ in messages for event in expected]
    assert framer.idle


@st.composite
def damaged_streams(draw, side: str) -> bytes:
    """Valid messages with a few bytes changed, inserted or cut: mostly not HTTP any more."""
    stream = bytearray(b"".join(w for _, w in draw(st.lists(wire_messages(side), max_size=3))))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(stream)))
        byte = draw(st.sampled_from(b"\r\n :;0aZ\t\x00\xff,"))
        action = draw(st.sampled_from(["insert", "replace", "delete"]))
        if action == "insert":
            stream[at:at] = bytes([byte])
        elif at < len(stream):
            stream[at : at + 1] = bytes([byte]) if action == "replace" else b""
    return bytes(stream)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(["request", "response"]), st.booleans())
def test_any_bytes_frame_the_same_however_split(data, side, eof):
    stream = data.draw(st.one_of(damaged_streams(side), st.binary(max_size=80)))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    limits = {"max_head_size": 100, "max_line_size": 40}  # small, so that limits are hit too
    assert run(framer_for(side, **limits), pieces, eof) == run(
        framer_for(side, **limits), [stream], eof)


def framer_for(side: str, responses: int = 4, **limits):
    """A request framer, or a response framer awaiting ``responses`` answers to GET."""
    if side == "request":
        return RequestFramer(**limits)
    return responses_to(*[b"GET"] * responses, **limits)()
