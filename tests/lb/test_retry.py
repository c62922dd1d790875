"""The retry decision, row by row: every failure, method and circumstance."""

import pytest

from lab.lb.retry import IDEMPOTENT, Failure, Next, Verdict, verdict

N, S, A, C = Next.NEXT_BACKEND, Next.SAME_BACKEND, Next.ANSWER, Next.CLOSE


@pytest.mark.parametrize(("failure", "method", "replayable", "stale", "begun", "expected"), [
    # rule 2: nothing was sent, so any method goes on, whatever its body
    (Failure.CONNECT, b"GET", True, False, False, Verdict(N, 502, True)),
    (Failure.CONNECT, b"POST", True, False, False, Verdict(N, 502, True)),
    (Failure.CONNECT_TIMEOUT, b"POST", True, False, False, Verdict(N, 504, True)),
    # rule 3: sent, then closed or silent: idempotent and replayable only
    (Failure.CLOSED, b"GET", True, False, False, Verdict(N, 502, True)),
    (Failure.TIMEOUT, b"PUT", True, False, False, Verdict(N, 504, True)),
    (Failure.TIMEOUT, b"DELETE", True, False, False, Verdict(N, 504, True)),
    (Failure.CLOSED, b"POST", True, False, False, Verdict(A, 502, True)),
    (Failure.TIMEOUT, b"PATCH", True, False, False, Verdict(A, 504, True)),
    (Failure.CLOSED, b"PUT", False, False, False, Verdict(A, 502, True)),  # body not kept
    (Failure.CLOSED, b"BREW", True, False, False, Verdict(A, 502, True)),  # unknown method
    # rule 4: a stale pooled connection: the same backend afresh, not blamed
    (Failure.CLOSED, b"GET", True, True, False, Verdict(S, 502, False)),
    (Failure.CLOSED, b"POST", True, True, False, Verdict(A, 502, False)),
    (Failure.CLOSED, b"PUT", False, True, False, Verdict(A, 502, False)),
    (Failure.TIMEOUT, b"GET", True, True, False, Verdict(N, 504, True)),  # silence is no close
    # rule 5: not HTTP: 502 at once
    (Failure.INVALID, b"GET", True, False, False, Verdict(A, 502, True)),
    # rule 1: the answer had begun: nothing can be retried
    (Failure.CLOSED, b"GET", True, False, True, Verdict(C, 502, True)),
    (Failure.TIMEOUT, b"GET", True, False, True, Verdict(C, 504, True)),
    (Failure.INVALID, b"GET", True, False, True, Verdict(C, 502, True)),
])
def test_verdicts(failure, method, replayable, stale, begun, expected) -> None:
    assert verdict(failure, method=method, replayable=replayable, stale=stale,
                   answer_begun=begun) == expected


def test_idempotent_methods_are_rfc_9110s() -> None:
    assert {b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"} == IDEMPOTENT
    assert [f for f in Failure if not f.sent] == [Failure.CONNECT, Failure.CONNECT_TIMEOUT]


def test_no_answer_can_begin_before_the_request_is_sent() -> None:
    with pytest.raises(AssertionError):
        verdict(Failure.CONNECT, method=b"GET", replayable=True, answer_begun=True)
