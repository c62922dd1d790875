"""A backend's health as a state machine: NGINX's max_fails and fail_timeout, plus active checks.

Passive health (NGINX's meaning): ``max_fails`` failed requests within
``fail_timeout`` seconds make the backend unavailable for ``fail_timeout``
seconds; then it is tried again. Here exactly one *trial* request goes
through: its success brings the backend back, its failure puts it down for
another ``fail_timeout``. ``max_fails=0`` turns the counting off (a backend
in service never goes down for failed requests). What counts as a failure --
a refused connection, a timeout, a malformed response -- is the proxy's call.

The states, and the table of every legal transition (``TRANSITIONS``)::

    UP        in service, no failure counted
    SUSPECT   in service, 1..max_fails-1 failures since the window opened
    DOWN      out of service until fail_timeout has passed
    PROBING   fail_timeout has passed: the next request is the trial
    TRIAL     the trial request is in flight; no other request is sent

    UP      --FAILURE--> SUSPECT --FAILURE--> SUSPECT --MAX_FAILS--> DOWN
    UP      --MAX_FAILS--> DOWN                        (max_fails=1)
    SUSPECT --WINDOW_EXPIRED--> UP    fail_timeout after the window's first failure
    DOWN    --RETRY_DUE--> PROBING --STARTED--> TRIAL --SUCCESS--> UP
                                                TRIAL --FAILURE--> DOWN
                                                TRIAL --ABANDONED--> PROBING
    any     --CHECK_FAILED--> DOWN;  DOWN, PROBING, TRIAL --CHECK_OK--> UP

plus self-loops: a success does not clear a SUSPECT's count (NGINX counts
failures in the window whatever happened between them), and a DOWN backend
ignores the results of requests it took before it went down. In PROBING such
a late result counts as the trial's: it is news from after the timeout. A
request that ends with no verdict on the backend (ABANDONED: the client left
before the answer began, or a stale keep-alive connection, which proves
nothing) changes nothing, except that a trial so ended
leaves its place to the next request. The two timed
events are raised by the clock: every method first looks at ``clock()`` and
fires WINDOW_EXPIRED or RETRY_DUE if due, so no timer is needed. An event
with no row raises ``IllegalTransition`` (a request started on a DOWN backend
is a balancer bug).

Active checks (``check_passed``/``check_failed``, from a periodic
``GET /health``; ``check_ok(status)`` says what passes) are optional. A failed
check takes the backend out at once, and pushes a DOWN backend's retry back;
a passing one brings back a backend that is out of service.

How NGINX differs: its window is reset lazily by the next request after
``fail_timeout``, not by the clock; after the timeout it lets requests
through until one fails, not exactly one trial. Active checks are NGINX
Plus's ``health_check``, whose ``fails``/``passes`` counts are fixed at 1 here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class State(Enum):
    UP = "up"
    SUSPECT = "suspect"
    DOWN = "down"
    PROBING = "probing"
    TRIAL = "trial"


class Event(Enum):
    STARTED = "started"  # a request was sent to the backend
    SUCCESS = "success"  # a request got its response
    FAILURE = "failure"  # a request failed, and that does not reach max_fails
    ABANDONED = "abandoned"  # a request ended with no verdict: e.g. the client left first
    MAX_FAILS = "max-fails"  # a request failed, and that makes max_fails in the window
    WINDOW_EXPIRED = "window-expired"  # fail_timeout since the window's first failure
    RETRY_DUE = "retry-due"  # fail_timeout since the backend went down
    CHECK_OK = "check-ok"  # an active health check passed
    CHECK_FAILED = "check-failed"  # an active health check failed


_S, _E = State, Event
TRANSITIONS: dict[tuple[State, Event], State] = {
    (_S.UP, _E.STARTED): _S.UP,
    (_S.UP, _E.SUCCESS): _S.UP,
    (_S.UP, _E.FAILURE): _S.SUSPECT,
    (_S.UP, _E.ABANDONED): _S.UP,
    (_S.UP, _E.MAX_FAILS): _S.DOWN,
    (_S.UP, _E.CHECK_OK): _S.UP,
    (_S.UP, _E.CHECK_FAILED): _S.DOWN,
    (_S.SUSPECT, _E.STARTED): _S.SUSPECT,
    (_S.SUSPECT, _E.SUCCESS): _S.SUSPECT,  # failures in the window still count
    (_S.SUSPECT, _E.FAILURE): _S.SUSPECT,
    (_S.SUSPECT, _E.ABANDONED): _S.SUSPECT,
    (_S.SUSPECT, _E.MAX_FAILS): _S.DOWN,
    (_S.SUSPECT, _E.WINDOW_EXPIRED): _S.UP,
    (_S.SUSPECT, _E.CHECK_OK): _S.SUSPECT,  # a check does not forgive failed requests
    (_S.SUSPECT, _E.CHECK_FAILED): _S.DOWN,
    (_S.DOWN, _E.SUCCESS): _S.DOWN,  # a request from before the fall: ignored
    (_S.DOWN, _E.FAILURE): _S.DOWN,  # likewise
    (_S.DOWN, _E.ABANDONED): _S.DOWN,
    (_S.DOWN, _E.RETRY_DUE): _S.PROBING,
    (_S.DOWN, _E.CHECK_OK): _S.UP,
    (_S.DOWN, _E.CHECK_FAILED): _S.DOWN,  # and the retry waits a full fail_timeout again
    (_S.PROBING, _E.STARTED): _S.TRIAL,
    (_S.PROBING, _E.SUCCESS): _S.UP,  # a late answer, but an answer: the backend works
    (_S.PROBING, _E.FAILURE): _S.DOWN,
    (_S.PROBING, _E.ABANDONED): _S.PROBING,
    (_S.PROBING, _E.CHECK_OK): _S.UP,
    (_S.PROBING, _E.CHECK_FAILED): _S.DOWN,
    (_S.TRIAL, _E.SUCCESS): _S.UP,
    (_S.TRIAL, _E.FAILURE): _S.DOWN,
    (_S.TRIAL, _E.ABANDONED): _S.PROBING,  # no verdict: the next request is the trial
    (_S.TRIAL, _E.CHECK_OK): _S.UP,
    (_S.TRIAL, _E.CHECK_FAILED): _S.DOWN,
}
AVAILABLE = frozenset({State.UP, State.SUSPECT, State.PROBING})  # may be sent a request


class IllegalTransition(ValueError):
    """An event that the current state has no row for."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"no transition from {state.name} on {event.name}")
        self.state = state
        self.event = event


def check_ok(status: int) -> bool:
    """Does an active check's response status pass? 2xx and 3xx, as NGINX Plus's default."""
    return 200 <= status < 400


class Health:
    """One backend's health. ``on_transition(old, new, event)`` hears every change of state."""

    def __init__(self, max_fails: int = 1, fail_timeout: float = 10.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_transition: Callable[[State, State, Event], None] | None = None) -> None:
        if isinstance(max_fails, bool) or not isinstance(max_fails, int) or max_fails < 0:
            raise ValueError(f"max_fails must be an integer >= 0, got {max_fails!r}")
        if not 0 < fail_timeout < float("inf"):
            raise ValueError(f"fail_timeout must be positive, got {fail_timeout!r}")
        self.max_fails = max_fails
        self.fail_timeout = fail_timeout
        self.clock = clock
        self.on_transition = on_transition
        self._state = State.UP
        self._fails = 0  # failures counted in the current window (UP, SUSPECT)
        self._since = 0.0  # when the window opened (SUSPECT) or the backend went down (DOWN)

    @property
    def state(self) -> State:
        self._tick()
        return self._state

    @property
    def available(self) -> bool:
        """May the balancer send this backend a request now?"""
        return self.state in AVAILABLE

    def request_started(self) -> None:
        self._fire(Event.STARTED)

    def request_succeeded(self) -> None:
        self._fire(Event.SUCCESS)

    def request_failed(self) -> None:
        self._tick()  # once: a window that expires now must not see this failure counted
        event = Event.FAILURE
        if self._state in (State.UP, State.SUSPECT):
            if not self.max_fails:
                return  # max_fails=0: failed requests are not counted
            self._fails += 1
            if self._fails >= self.max_fails:
                event = Event.MAX_FAILS
        self._fire(event, tick=False)

    def request_abandoned(self) -> None:
        """A request sent to this backend ended with no verdict on it (e.g. the client left)."""
        self._fire(Event.ABANDONED)

    def check_passed(self) -> None:
        self._fire(Event.CHECK_OK)

    def check_failed(self) -> None:
        self._fire(Event.CHECK_FAILED)

    def _tick(self) -> None:
        """Fire the timed events that are due."""
        elapsed = self.clock() - self._since
        if self._state is State.SUSPECT and elapsed >= self.fail_timeout:
            self._fire(Event.WINDOW_EXPIRED, tick=False)
        elif self._state is State.DOWN and elapsed >= self.fail_timeout:
            self._fire(Event.RETRY_DUE, tick=False)

    def _fire(self, event: Event, tick: bool = True) -> None:
        if tick:
            self._tick()  # first the time that has passed, then the event
        old = self._state
        new = TRANSITIONS.get((old, event))
        if new is None:
            raise IllegalTransition(old, event)
        if new is State.DOWN and (old is not State.DOWN or event is Event.CHECK_FAILED):
            self._since = self.clock()  # unavailable for fail_timeout from now
        elif new is State.SUSPECT and old is State.UP:
            self._since = self.clock()  # the window opens at its first failure
        if new in (State.UP, State.DOWN):
            self._fails = 0
        self._state = new
        if new is not old and self.on_transition is not None:
            self.on_transition(old, new, event)

    def __repr__(self) -> str:  # self._state, not self.state: a repr must not fire events
        state = self._state
        detail = f", fails={self._fails}/{self.max_fails}" if state is State.SUSPECT else ""
        return f"Health({state.name}{detail}, fail_timeout={self.fail_timeout})"
