"""The errors a handler can raise, each one an HTTP status and a JSON body.

    HTTPError                 500  the base: anything that is not one of these
    ├── BadRequest            400  {"message": ...}
    │   └── ValidationFailed  400  {"message": "Validation error", "errors": [{"path", "message"}]}
    ├── NotFound              404
    ├── MethodNotAllowed      405  with an Allow header
    ├── Conflict              409
    ├── PayloadTooLarge       413  and the connection is closed: the rest of the body is not read
    ├── UnsupportedMediaType  415
    ├── ExpectationFailed     417  an ``Expect`` other than 100-continue
    └── ServiceUnavailable    503

A handler raises one of these and the app (``lab/http/app.py``) turns it into
the response; nothing else needs to know about status codes. Any *other*
exception is a bug: the app logs it once with the request id and answers 500
with a generic message -- never the exception's text, which may hold internals.

``message`` is what the client reads, so it is written for the client:
"Task 7 not found", not "KeyError: 7".
"""

from __future__ import annotations

from typing import Any


class HTTPError(Exception):
    status = 500
    default_message = "Internal server error"
    close_connection = False  # True: answer, then close (the request's framing is not trusted)

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None,
                 close_connection: bool | None = None):
        self.message = message or self.default_message
        self.headers = headers or {}
        if close_connection is not None:
            self.close_connection = close_connection
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"message": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


class BadRequest(HTTPError):
    status = 400
    default_message = "Bad request"


class ValidationFailed(BadRequest):
    """One entry per problem found, so a client can fix them all at once."""

    default_message = "Validation error"

    def __init__(self, errors: list[dict[str, str]]):
        assert errors, "a validation failure names at least one problem"
        super().__init__()
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "errors": self.errors}


class NotFound(HTTPError):
    status = 404
    default_message = "Not found"


class MethodNotAllowed(HTTPError):
    status = 405

    def __init__(self, method: str, allow: list[str]):
        super().__init__(f"Method {method} not allowed", headers={"Allow": ", ".join(allow)})
        self.allow = allow


class Conflict(HTTPError):
    status = 409
    default_message = "Conflict"


class PayloadTooLarge(HTTPError):
    status = 413
    default_message = "Request body too large"
    # Keeping the connection would mean reading (and dropping) the whole refused body
    # first, to find where the next request starts; closing costs the client a reconnect.
    close_connection = True


class UnsupportedMediaType(HTTPError):
    status = 415
    default_message = "Content-Type must be application/json"


class ExpectationFailed(HTTPError):
    status = 417
    default_message = "Only 'Expect: 100-continue' is supported"


class ServiceUnavailable(HTTPError):
    status = 503
    default_message = "Service unavailable"


def found(value: Any, message: str) -> Any:
    """``value``, unless it is None (or False): then a 404 with ``message``."""
    if value is None or value is False:
        raise NotFound(message)
    return value
