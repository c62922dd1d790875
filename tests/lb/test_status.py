"""The proxy's own answers: bytes compared with what its NGINX twin sends."""

import json

from lab.lb import nginx
from lab.lb.status import document, error_answer, json_answer, reason
from lab.lb.tuning import ERROR_MESSAGES


def test_an_error_answer_is_complete_json_with_the_shared_message() -> None:
    answer = error_answer(503)
    head, body = answer.split(b"\r\n\r\n")
    assert head.split(b"\r\n") == [b"HTTP/1.1 503 Service Unavailable",
                                   b"Content-Type: application/json",
                                   b"Content-Length: %d" % len(body), b"Connection: close"]
    assert json.loads(body) == {"message": ERROR_MESSAGES[503]}


def test_the_body_is_the_one_nginx_sends() -> None:
    text = nginx.render(nginx.read_template(), ["127.0.0.1:8001"], port=8081)
    for status in ERROR_MESSAGES:
        body = error_answer(status).split(b"\r\n\r\n")[1].decode()
        assert f"return {status} '{body[:-1]}\\n';" in text


def test_statuses_without_a_shared_message_say_what_was_wrong() -> None:
    body = error_answer(400, "malformed request line", close=False).split(b"\r\n\r\n")[1]
    assert json.loads(body) == {"message": "malformed request line"}
    assert b"Connection" not in error_answer(400, "x", close=False)
    assert reason(408) == b"Request Timeout" and reason(799) == b""


def test_a_head_answer_has_the_length_but_no_body() -> None:
    answer = json_answer(200, {"a": 1}, close=False, head_only=True)
    assert answer.endswith(b"Content-Length: 9\r\n\r\n")


def test_the_document_lists_answers_by_status() -> None:
    made = document(strategy="least-conn", clients=2, requests=9, answers={504: 1, 502: 2},
                    backends=[])
    assert made == {"strategy": "least-conn", "clients": {"open": 2, "requests": 9},
                    "answers": {"502": 2, "504": 1}, "backends": []}
