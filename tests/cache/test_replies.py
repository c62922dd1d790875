import pytest

from lab.cache import replies


def test_reply_constants():
    assert replies.OK == b"+OK\r\n"
    assert replies.PONG == b"+PONG\r\n"
    assert replies.NULL_BULK == b"$-1\r\n"
    assert replies.NULL_ARRAY == b"*-1\r\n"
    assert replies.EMPTY_ARRAY == b"*0\r\n"
    assert (replies.ZERO, replies.ONE, replies.MINUS_ONE, replies.MINUS_TWO) == (
        b":0\r\n",
        b":1\r\n",
        b":-1\r\n",
        b":-2\r\n",
    )


def test_simple_string_refuses_line_breaks():
    assert replies.simple_string(b"QUEUED") == b"+QUEUED\r\n"
    with pytest.raises(ValueError):
        replies.simple_string(b"a\r\nb")


def test_error_replaces_line_breaks_with_spaces():
    assert replies.error(b"ERR bad\r\nthing\n") == b"-ERR bad  thing \r\n"


@pytest.mark.parametrize("n", [0, 1, 255, 256, -1, -(2**63), 2**63 - 1])
def test_integer(n):
    assert replies.integer(n) == b":" + str(n).encode() + b"\r\n"


def test_bulk():
    assert replies.bulk(b"") == b"$0\r\n\r\n" == replies.EMPTY_BULK
    assert replies.bulk(b"a\r\nb") == b"$4\r\na\r\nb\r\n"
    assert replies.bulk(None) == replies.NULL_BULK


def test_array_nests_encoded_replies():
    inner = replies.array([replies.integer(1), replies.NULL_BULK])
    assert replies.array([replies.bulk(b"x"), inner]) == b"*2\r\n$1\r\nx\r\n*2\r\n:1\r\n$-1\r\n"
    assert replies.array([]) == replies.EMPTY_ARRAY
    assert replies.array(replies.bulk(v) for v in [b"a"]) == b"*1\r\n$1\r\na\r\n"
