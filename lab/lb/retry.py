"""What to do when a backend fails a request: try again, and where, or answer an error.

A pure function of what is known when the failure happens, so that every
rule is a row in a test (``tests/lb/test_retry.py``). The proxy asks
``verdict(...)`` after each failed attempt and does what it says.

The rules are NGINX's ``proxy_next_upstream error timeout`` (the setting of
its twin, ``infra/nginx/lb.conf.template``), and RFC 9112 section 9.3.1: "a
proxy MUST NOT automatically retry non-idempotent requests".

1. **Never once the answer has begun.** If any byte of the response went to
   the client, nothing can be taken back: the client connection is closed
   (``CLOSE``), which the client sees as a truncated answer.
2. **A connect that failed** (refused, unreachable, or not accepted within
   ``connect_timeout``) sent nothing: the next backend is tried, whatever the
   method -- even a POST (NGINX does the same).
3. **A request that was sent** and then met a closed or reset connection, or
   no answer within ``read_timeout``, goes to the next backend only if its
   method is idempotent *and* its body can be sent again (the proxy streams
   bodies and keeps only the first ``REPLAY_LIMIT`` bytes; see ``proxy.py``).
   Otherwise the client gets 502 (closed) or 504 (timeout): the backend may
   have applied a POST it never answered.
4. **A stale pooled connection**: a keep-alive connection taken from the pool
   that closed before any byte of the answer came back is most likely one the
   backend closed as the request went out. Same rule as 3, except that the
   same backend is tried again on a fresh connection, and the backend is not
   blamed (its health does not hear of it).
5. **An answer that is not HTTP** (a malformed status line or framing) is 502
   at once: NGINX's ``invalid_header``, which its twin does not retry either.

Every failure except a stale connection counts against the backend's health
(``health.Health.request_failed``): NGINX counts ``error``, ``timeout`` and
``invalid_header`` as failed attempts whatever ``proxy_next_upstream`` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# RFC 9110 section 9.2.2. Unknown methods are not idempotent: the safe assumption.
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"})


class Failure(Enum):
    """How an attempt on a backend failed."""

    CONNECT = "connect"  # connect() refused or unreachable: nothing was sent
    CONNECT_TIMEOUT = "connect-timeout"  # not connected within connect_timeout: nothing sent
    CLOSED = "closed"  # the connection closed or was reset before the answer was complete
    TIMEOUT = "timeout"  # no (next) byte of the answer within read_timeout
    INVALID = "invalid"  # the backend's bytes are not an acceptable HTTP response

    @property
    def sent(self) -> bool:
        """Might the backend have received (part of) the request?"""
        return self not in (Failure.CONNECT, Failure.CONNECT_TIMEOUT)


class Next(Enum):
    """What the proxy does after a failed attempt."""

    NEXT_BACKEND = "next-backend"  # choose another backend (one not tried yet)
    SAME_BACKEND = "same-backend"  # the same backend, on a fresh connection
    ANSWER = "answer"  # give up: answer the client with ``status``
    CLOSE = "close"  # give up: the answer has begun, close the client connection


@dataclass(frozen=True, slots=True)
class Verdict:
    next: Next
    status: int  # the answer if no attempt succeeds: 502 or 504
    blame: bool  # does this count as a failure of the backend (its health)?


def verdict(failure: Failure, *, method: bytes, replayable: bool, stale: bool = False,
            answer_begun: bool = False) -> Verdict:
    """The decision after one failed attempt (see the module docstring).

    ``replayable``: the request body (if any) can be sent again in full;
    ``stale``: the attempt ran on a reused pooled connection that closed before
    any byte of the answer; ``answer_begun``: bytes of the answer reached the client.
    """
    status = 504 if failure in (Failure.TIMEOUT, Failure.CONNECT_TIMEOUT) else 502
    stale = stale and failure is Failure.CLOSED  # only a close can mean a stale connection
    blame = not stale
    if answer_begun:
        assert failure.sent, "no answer can begin before the request is sent"
        return Verdict(Next.CLOSE, status, blame)  # rule 1
    if not failure.sent:
        return Verdict(Next.NEXT_BACKEND, status, blame)  # rule 2
    if failure is Failure.INVALID:
        return Verdict(Next.ANSWER, status, blame)  # rule 5
    if method in IDEMPOTENT and replayable:
        return Verdict(Next.SAME_BACKEND if stale else Next.NEXT_BACKEND, status, blame)
    return Verdict(Next.ANSWER, status, blame)  # rules 3 and 4: it may have been applied
