"""What the proxy says itself: its JSON error answers, and its status document.

Pure: values in, bytes or a dict out. Every answer the proxy makes without a
backend is JSON ``{"message": ...}``, like the API's own errors and like the
NGINX twin's (whose messages come from the same ``tuning.ERROR_MESSAGES``,
so both balancers answer 413, 431, 502, 503 and 504 with the same bytes).
The other statuses the proxy makes (400, 408, 414, 501, 505) carry the
framer's own reason, which says what was wrong with the request.

The **status document** (``GET /lb-status`` on the proxy's own port, see
``proxy.py``) is one JSON object: the strategy, the client side's counters,
the answers the proxy made itself by status, and per backend its address,
weight, health state, requests sent (ever), failures, requests in flight,
and its pool's connections (open now, idle now, opened ever, reuses ever).
It is read-only and built on demand: no counter exists only for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

from lab.lb.messages import Response, encode_head
from lab.lb.tuning import ERROR_MESSAGES


def reason(status: int) -> bytes:
    """The standard reason phrase (NGINX always writes one); empty for an unknown status."""
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def json_answer(status: int, document: object, *, close: bool, head_only: bool = False,
                extra: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A complete HTTP/1.1 answer with a JSON body; ``head_only`` for a HEAD request."""
    body = json.dumps(document).encode("utf-8") + b"\n"  # the newline NGINX's twin ends with
    headers = ((b"Content-Type", b"application/json"),
               (b"Content-Length", b"%d" % len(body)), *extra)
    if close:
        headers = (*headers, (b"Connection", b"close"))
    head = encode_head(Response(status, headers, reason(status)))
    return head if head_only else head + body


def error_answer(status: int, detail: str = "", *, close: bool = True) -> bytes:
    """``{"message": ...}`` for an answer the proxy makes itself: the shared message for
    the statuses that have one, else ``detail`` (the framer's reason)."""
    message = ERROR_MESSAGES.get(status) or detail or reason(status).decode("ascii")
    return json_answer(status, {"message": message}, close=close)


def backend_entry(*, address: str, weight: int, state: str, requests: int, failures: int,
                  active: int, open_connections: int, idle_connections: int, opened: int,
                  reused: int) -> dict:
    """One backend's line in the status document."""
    return {"address": address, "weight": weight, "state": state, "requests": requests,
            "failures": failures, "active": active,
            "connections": {"open": open_connections, "idle": idle_connections,
                            "opened": opened, "reused": reused}}


def document(*, strategy: str, clients: int, requests: int, answers: Mapping[int, int],
             backends: list[dict]) -> dict:
    """The whole status document; ``answers`` counts the proxy's own answers by status."""
    return {"strategy": strategy,
            "clients": {"open": clients, "requests": requests},
            "answers": {str(status): count for status, count in sorted(answers.items())},
            "backends": backends}
