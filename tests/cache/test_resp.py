"""RequestParser fed bytes: no sockets."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.cache.resp import (
    PROTO_INLINE_MAX_SIZE,
    PROTO_MAX_BULK_LEN,
    ProtocolError,
    RequestParser,
    split_inline,
)


def encode_command(*args: bytes) -> bytes:
    """A command as redis-py and redis-benchmark send it."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


PIPELINE = [
    [b"SET", b"key:1", b"hello"],
    [b"GET", b"key:1"],
    [b"SET", b"bin", b"a\r\nb\x00\xff"],  # a CRLF inside a payload
    [b"PING"],
    [b"MSET", b"", b"", b"k", b"v" * 2000],  # empty strings, a length not in the tables
    [b"ECHO", b"*1\r\n$4\r\nPING\r\n"],  # RESP inside a payload
]
STREAM = b"".join(encode_command(*c) for c in PIPELINE) + b"PING\r\nset a 'b c'\r\n"
EXPECTED = [*PIPELINE, [b"PING"], [b"set", b"a", b"b c"]]


def feed_all(parser: RequestParser, pieces: list[bytes]) -> list[list[bytes]]:
    out = []
    for piece in pieces:
        out += parser.feed(piece)
    return out


def test_one_read_gives_every_command():
    parser = RequestParser()
    assert parser.feed(STREAM) == EXPECTED
    assert parser.buffered == 0


def test_every_split_point_gives_the_same_commands():
    for cut in range(len(STREAM) + 1):
        parser = RequestParser()
        assert feed_all(parser, [STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut
        assert parser.buffered == 0


def test_every_pair_of_split_points_in_a_short_stream():
    stream = encode_command(b"SET", b"k", b"a\r\nb") + encode_command(b"GET", b"k") + b"PING\r\n"
    expected = [[b"SET", b"k", b"a\r\nb"], [b"GET", b"k"], [b"PING"]]
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            parser = RequestParser()
            assert feed_all(parser, [stream[:i], stream[i:j], stream[j:]]) == expected, (i, j)
            assert parser.buffered == 0


def test_one_byte_at_a_time():
    parser = RequestParser()
    pieces = [STREAM[i : i + 1] for i in range(len(STREAM))]
    assert feed_all(parser, pieces) == EXPECTED


def test_a_command_is_returned_only_when_complete():
    parser = RequestParser()
    frame = encode_command(b"SET", b"k", b"value")
    assert parser.feed(frame[:-1]) == []
    assert parser.buffered > 0
    assert parser.feed(frame[-1:]) == [[b"SET", b"k", b"value"]]
    assert parser.buffered == 0


def test_many_frames_in_one_read():
    frames = [[b"SET", b"key:%d" % i, b"x" * (i % 7)] for i in range(1000)]
    parser = RequestParser()
    assert parser.feed(b"".join(encode_command(*f) for f in frames)) == frames


def test_a_large_bulk_in_small_reads_is_joined_once_complete():
    value = bytes(range(256)) * 4096  # 1 MiB
    frame = encode_command(b"SET", b"big", value)
    parser = RequestParser()
    results = [parser.feed(frame[i : i + 4096]) for i in range(0, len(frame), 4096)]
    assert all(r == [] for r in results[:-1])
    assert results[-1] == [[b"SET", b"big", value]]
    assert len(parser._chunks) == 0


def test_arguments_are_bytes_and_binary_safe():
    (command,) = RequestParser().feed(encode_command(b"SET", b"\x00\r\n", b"\xff" * 3))
    assert command == [b"SET", b"\x00\r\n", b"\xff\xff\xff"]
    assert all(type(arg) is bytes for arg in command)


def test_empty_and_negative_multibulk_are_skipped_like_redis():
    assert RequestParser().feed(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n") == [[b"PING"]]


# -- inline commands -----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"PING", [b"PING"]),
        (b"  SET   k\tv  ", [b"SET", b"k", b"v"]),
        (b'SET k "hello world"', [b"SET", b"k", b"hello world"]),
        (b'SET k "a\\r\\n\\t\\"\\\\"', [b"SET", b"k", b'a\r\n\t"\\']),
        (b'SET k "\\x41\\x4a\\xzz"', [b"SET", b"k", b"AJxzz"]),
        (b"SET k 'it''s'", None),  # closing quote followed by a quote
        (b"SET k 'it\\'s'", [b"SET", b"k", b"it's"]),
        (b"SET k 'no \\n escape'", [b"SET", b"k", b"no \\n escape"]),
        (b'GET foo"bar baz"', [b"GET", b"foobar baz"]),
        (b'GET ""', [b"GET", b""]),
        (b'GET "open', None),
        (b"GET 'open", None),
        (b'GET "a"b', None),
        (b"", []),
    ],
)
def test_split_inline_like_sdssplitargs(line, words):
    assert split_inline(line) == words


def test_inline_commands_end_with_crlf_or_lf_and_empty_lines_are_skipped():
    assert RequestParser().feed(b"PING\r\n\r\n\nECHO hi\nGET k\r\n") == [
        [b"PING"],
        [b"ECHO", b"hi"],
        [b"GET", b"k"],
    ]


def test_inline_and_multibulk_mix():
    stream = b"PING\r\n" + encode_command(b"GET", b"k") + b"DBSIZE\r\n"
    assert RequestParser().feed(stream) == [[b"PING"], [b"GET", b"k"], [b"DBSIZE"]]


# -- malformed input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*1\r\nx\r\n", "Protocol error: expected '$', got 'x'"),
        (b"*1\r\nGET", "Protocol error: expected '$', got 'G'"),  # refused before the line ends
        (b"*2\r\n$3\r\nGET\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
        (b"*x\r\n", "Protocol error: invalid multibulk length"),
        (b"*+1\r\n", "Protocol error: invalid multibulk length"),
        (b"* 1\r\n", "Protocol error: invalid multibulk length"),
        (b"*01\r\n", "Protocol error: invalid multibulk length"),
        (b"*\r\n", "Protocol error: invalid multibulk length"),
        (b"*99999999999999999999\r\n", "Protocol error: invalid multibulk length"),
        (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$03\r\nabc\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$1_0\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$3\r\nabcd\r\n", "Protocol error: expected '\\r\\n' after bulk data"),
        (b'SET k "v\r\n', "Protocol error: unbalanced quotes in request"),
    ],
)
def test_garbage_raises_a_redis_style_error(data, message):
    with pytest.raises(ProtocolError) as caught:
        RequestParser().feed(data)
    assert str(caught.value) == message


def test_garbage_split_across_reads_raises_as_well():
    parser = RequestParser()
    assert parser.feed(b"*1\r\n$3\r\nab") == []
    with pytest.raises(ProtocolError, match="after bulk data"):
        parser.feed(b"cXY")


def test_the_error_carries_the_commands_before_it_and_the_parser_stays_dead():
    parser = RequestParser()
    with pytest.raises(ProtocolError) as caught:
        parser.feed(encode_command(b"PING") + b"PING\r\n*1\r\n$x\r\n" + encode_command(b"GET"))
    assert caught.value.commands == [[b"PING"], [b"PING"]]
    assert parser.buffered == 0
    with pytest.raises(ProtocolError, match="invalid bulk length") as again:
        parser.feed(encode_command(b"PING"))
    assert again.value.commands == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PING" * 20000, "too big inline request"),
        (b"*" + b"1" * 70000, "too big mbulk count string"),
        (b"*1\r\n$" + b"1" * 70000, "too big bulk count string"),
    ],
)
def test_a_line_that_never_ends_is_refused_past_64k(data, message):
    with pytest.raises(ProtocolError, match=message):
        RequestParser().feed(data)


def test_a_line_that_never_ends_is_refused_even_in_small_reads():
    parser = RequestParser()
    sent = 0
    with pytest.raises(ProtocolError, match="too big inline request"):
        while sent <= PROTO_INLINE_MAX_SIZE + 1024:
            sent += 1000
            parser.feed(b"x" * 1000)
    assert sent > PROTO_INLINE_MAX_SIZE  # not before the limit


def test_an_inline_line_longer_than_the_limit_is_refused_even_with_its_newline():
    parser = RequestParser(max_inline_len=10)
    assert parser.feed(b"ECHO 12345\r\nECHO 67890\n") == [[b"ECHO", b"12345"], [b"ECHO", b"67890"]]
    with pytest.raises(ProtocolError, match="too big inline request"):
        parser.feed(b"ECHO 123456\r\n")


# -- limits: refused at the header, before the payload -----------------------------


def test_a_bulk_length_over_the_limit_is_refused_at_its_header():
    parser = RequestParser(max_bulk_len=10)
    assert parser.feed(encode_command(b"SET", b"k", b"x" * 10)) == [[b"SET", b"k", b"x" * 10]]
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parser.feed(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$11\r\n")  # no payload sent at all
    assert parser.buffered == 0


def test_the_default_bulk_limit_is_redis_proto_max_bulk_len():
    parser = RequestParser()
    parser.feed(b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % PROTO_MAX_BULK_LEN)  # accepted: waits for it
    assert parser._need == PROTO_MAX_BULK_LEN + 2
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        RequestParser().feed(b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % (PROTO_MAX_BULK_LEN + 1))


def test_an_over_limit_header_split_across_reads_is_refused_when_its_line_ends():
    parser = RequestParser(max_bulk_len=1000)
    assert parser.feed(b"*1\r\n$99") == []
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parser.feed(b"999\r\n")
    assert parser.buffered == 0


def test_a_multibulk_count_over_the_limit_is_refused_at_its_header():
    parser = RequestParser(max_multibulk_len=3)
    assert parser.feed(encode_command(b"a", b"b", b"c")) == [[b"a", b"b", b"c"]]
    with pytest.raises(ProtocolError, match="invalid multibulk length"):
        parser.feed(b"*4\r\n")


def test_large_limits_still_use_the_slow_path_correctly():
    value = b"v" * 5000  # a header not in the lookup tables
    assert RequestParser().feed(encode_command(b"SET", b"k", value)) == [[b"SET", b"k", value]]


@pytest.mark.parametrize("name", ["max_bulk_len", "max_multibulk_len", "max_inline_len"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_limits_must_be_positive_integers(name, value):
    with pytest.raises(ValueError, match=name):
        RequestParser(**{name: value})


def test_repr_shows_the_state():
    parser = RequestParser()
    parser.feed(b"*2\r\n$3\r\nGET\r\n")
    assert "1 bulks left" in repr(parser)
    assert "buffered=3" in repr(parser)


# -- a property: any commands, cut anywhere ----------------------------------------

tricky = st.sampled_from([b"\r\n", b"$3\r\n", b"*1", b"$2000", b"\r"])  # RESP-looking payloads
commands_strategy = st.lists(
    st.lists(
        st.binary(max_size=40) | tricky,
        min_size=1,
        max_size=5,
    ),
    min_size=1,
    max_size=8,
)


@given(commands=commands_strategy, cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_any_commands_cut_anywhere_parse_back(commands, cuts):
    stream = b"".join(encode_command(*c) for c in commands)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    parser = RequestParser()
    assert feed_all(parser, pieces) == commands
    assert parser.buffered == 0


def test_an_empty_line_where_a_bulk_header_belongs_is_a_protocol_error():
    parser = RequestParser()
    with pytest.raises(ProtocolError, match=re.escape("expected '$', got '\r'")) as caught:
        parser.feed(b"PING\r\n*1\r\n\r\n")
    assert caught.value.commands == [[b"PING"]]  # the command before it still runs


def test_an_inline_line_of_the_longest_length_may_arrive_without_its_newline():
    parser = RequestParser(max_inline_len=8)
    assert parser.feed(b"SET k 12\r") == []  # 8 bytes and the "\r": still within the limit
    assert parser.feed(b"\n") == [[b"SET", b"k", b"12"]]
    parser = RequestParser(max_inline_len=8)
    with pytest.raises(ProtocolError, match="too big inline request"):
        parser.feed(b"SET k 123")  # 9 bytes, no line end yet: over the limit already
