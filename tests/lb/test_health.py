"""A backend's health machine, driven with a fake clock: every row of the table, every
illegal pair, and NGINX's max_fails/fail_timeout told as stories."""

import pytest

from lab.lb.balancer import Backend, RoundRobin
from lab.lb.health import (
    AVAILABLE,
    TRANSITIONS,
    Event,
    Health,
    IllegalTransition,
    State,
    check_ok,
)
from tests.cache.clock import FakeClock

FAIL_TIMEOUT = 10.0


def health_in(state: State, clock: FakeClock, max_fails: int = 3) -> Health:
    """A Health brought to ``state`` through its public methods only."""
    health = Health(max_fails, FAIL_TIMEOUT, clock)
    if state is State.SUSPECT:
        health.request_failed()
    elif state in (State.DOWN, State.PROBING, State.TRIAL):
        health.check_failed()
        if state is not State.DOWN:
            clock.tick(FAIL_TIMEOUT)
            assert health.state is State.PROBING
        if state is State.TRIAL:
            health.request_started()
    assert health.state is state
    return health


def cause(event: Event, health: Health, clock: FakeClock) -> None:
    """Make ``event`` happen the way the proxy (or the clock) would."""
    if event in (Event.WINDOW_EXPIRED, Event.RETRY_DUE):
        clock.tick(FAIL_TIMEOUT)
        health.state  # noqa: B018 -- reading the state is what lets time act
        return
    {
        Event.STARTED: health.request_started,
        Event.SUCCESS: health.request_succeeded,
        Event.FAILURE: health.request_failed,
        Event.ABANDONED: health.request_abandoned,
        Event.MAX_FAILS: health.request_failed,
        Event.CHECK_OK: health.check_passed,
        Event.CHECK_FAILED: health.check_failed,
    }[event]()


@pytest.mark.parametrize(("row", "target"), TRANSITIONS.items(),
                         ids=[f"{s.name}-{e.name}" for s, e in TRANSITIONS])
def test_every_row_of_the_transition_table(row, target, monkeypatch):
    state, event = row
    clock = FakeClock()
    # MAX_FAILS is the failure that reaches max_fails: the first one from UP, the second
    # from SUSPECT; any other failure must stay below it.
    max_fails = (1 if state is State.UP else 2) if event is Event.MAX_FAILS else 3
    health = health_in(state, clock, max_fails)
    fired = []
    real_fire = health._fire
    monkeypatch.setattr(health, "_fire", lambda e, tick=True: (fired.append(e), real_fire(e, tick)))
    cause(event, health, clock)
    assert fired == [event]
    assert health.state is target


ALL_PAIRS = [(s, e) for s in State for e in Event]


@pytest.mark.parametrize("pair", [p for p in ALL_PAIRS if p not in TRANSITIONS],
                         ids=lambda p: f"{p[0].name}-{p[1].name}")
def test_every_pair_without_a_row_raises(pair):
    state, event = pair
    health = health_in(state, FakeClock())
    with pytest.raises(IllegalTransition, match=f"from {state.name} on {event.name}"):
        health._fire(event, tick=False)
    assert health.state is state  # an illegal event changes nothing


def test_a_request_sent_to_a_backend_out_of_service_is_a_bug():
    clock = FakeClock()
    for state in (State.DOWN, State.TRIAL):
        health = health_in(state, clock)
        with pytest.raises(IllegalTransition):
            health.request_started()
        assert isinstance(IllegalTransition(state, Event.STARTED), ValueError)


def test_max_fails_within_fail_timeout_takes_a_backend_down_for_fail_timeout():
    clock = FakeClock()
    health = Health(max_fails=3, fail_timeout=10, clock=clock)
    health.request_failed()
    clock.tick(4)
    health.request_succeeded()  # successes between failures do not reset the count
    health.request_failed()
    clock.tick(5.9)  # 9.9 s after the first failure: still in the window
    assert health.state is State.SUSPECT and health.available
    health.request_failed()
    assert health.state is State.DOWN and not health.available
    clock.tick(9.9)
    assert not health.available
    clock.tick(0.1)
    assert health.state is State.PROBING and health.available


def test_failures_spread_wider_than_fail_timeout_never_take_it_down():
    clock = FakeClock()
    health = Health(max_fails=2, fail_timeout=10, clock=clock)
    for _ in range(5):
        health.request_failed()
        assert health.state is State.SUSPECT
        clock.tick(10)  # the window closes before the next failure
        assert health.state is State.UP


def test_exactly_one_trial_request_then_up_or_down_again():
    clock = FakeClock()
    health = Health(max_fails=1, fail_timeout=10, clock=clock)
    health.request_failed()
    clock.tick(10)
    health.request_started()  # the trial
    assert health.state is State.TRIAL and not health.available  # nobody else meanwhile
    health.request_failed()
    assert health.state is State.DOWN
    clock.tick(9)
    assert not health.available  # down for a full fail_timeout again
    clock.tick(1)
    health.request_started()
    health.request_succeeded()
    assert health.state is State.UP


def test_results_of_requests_from_before_the_fall_are_ignored():
    clock = FakeClock()
    health = Health(max_fails=1, fail_timeout=10, clock=clock)
    health.request_failed()
    clock.tick(3)
    health.request_succeeded()
    health.request_failed()  # does not push the retry back either
    clock.tick(7)
    assert health.state is State.PROBING


def test_max_fails_zero_turns_the_accounting_off():
    clock = FakeClock()
    health = Health(max_fails=0, fail_timeout=10, clock=clock)
    for _ in range(100):
        health.request_failed()
    assert health.state is State.UP
    health.check_failed()  # an active check still can, and its trial still counts
    clock.tick(10)
    health.request_started()
    health.request_failed()
    assert health.state is State.DOWN


def test_active_checks():
    clock = FakeClock()
    health = Health(max_fails=3, fail_timeout=10, clock=clock)
    health.check_failed()
    assert health.state is State.DOWN
    clock.tick(8)
    health.check_failed()  # still failing: the retry waits a full fail_timeout from now
    clock.tick(8)
    assert health.state is State.DOWN
    health.check_passed()
    assert health.state is State.UP
    health.request_failed()
    health.check_passed()  # a passing check does not forgive failed requests
    assert health.state is State.SUSPECT
    assert [check_ok(s) for s in (200, 204, 301, 399, 400, 404, 500, 503)] == [
        True, True, True, True, False, False, False, False]


def test_every_change_of_state_is_heard():
    clock = FakeClock()
    heard = []
    health = Health(2, 10, clock, on_transition=lambda *change: heard.append(change))
    health.request_failed()
    health.request_succeeded()  # a self-loop: nothing to hear
    health.request_failed()
    clock.tick(10)
    health.state  # noqa: B018
    assert heard == [(State.UP, State.SUSPECT, Event.FAILURE),
                     (State.SUSPECT, State.DOWN, Event.MAX_FAILS),
                     (State.DOWN, State.PROBING, Event.RETRY_DUE)]


def test_repr_shows_the_state_without_moving_it():
    clock = FakeClock()
    health = Health(3, 10, clock)
    health.request_failed()
    assert repr(health) == "Health(SUSPECT, fails=1/3, fail_timeout=10)"
    clock.tick(10)
    assert repr(health) == "Health(SUSPECT, fails=1/3, fail_timeout=10)"  # no event fired
    assert health.state is State.UP


@pytest.mark.parametrize(("max_fails", "fail_timeout"), [
    (-1, 10), (1.5, 10), (True, 10), (1, 0), (1, -1), (1, float("nan")), (1, float("inf")),
])
def test_bad_settings(max_fails, fail_timeout):
    with pytest.raises(ValueError):
        Health(max_fails, fail_timeout)


def test_available_states():
    assert {State.UP, State.SUSPECT, State.PROBING} == AVAILABLE


def test_the_balancer_asks_health_and_sends_one_trial():
    clock = FakeClock()
    a, b = backends = [Backend("127.0.0.1", 8001), Backend("127.0.0.1", 8002)]
    healths = {backend: Health(1, 10, clock) for backend in backends}
    balancer = RoundRobin(backends, available=lambda backend: healths[backend].available)
    healths[a].request_failed()
    assert {balancer.choose() for _ in range(4)} == {b}
    clock.tick(10)
    trial = balancer.choose()
    assert trial is a
    healths[a].request_started()
    assert {balancer.choose() for _ in range(4)} == {b}  # one trial at a time
    healths[a].request_succeeded()
    assert {balancer.choose() for _ in range(4)} == {a, b}


def test_a_trial_the_client_abandoned_leaves_its_place_to_the_next_request():
    clock = FakeClock()
    health = Health(max_fails=1, fail_timeout=10, clock=clock)
    health.request_failed()
    clock.tick(10)
    health.request_started()
    assert health.state is State.TRIAL
    health.request_abandoned()  # the client hung up before any answer: no verdict
    assert health.state is State.PROBING and health.available
    health.request_started()
    health.request_succeeded()
    assert health.state is State.UP
    health.request_started()
    health.request_abandoned()  # in service, an abandoned request changes nothing
    assert health.state is State.UP and repr(health) == "Health(UP, fail_timeout=10)"
