"""The message life cycle: every row of the table, every illegal pair, and ``decide`` for
every branch, each decision walked through the table to ACKED."""

import pytest

from lab.queue.events import InvalidEvent
from lab.queue.lifecycle import (
    DELIVERY_LIMIT,
    FINAL,
    INVALID,
    TRANSITIONS,
    X_ATTEMPT,
    X_DEATH_REASON,
    X_ERROR,
    Decision,
    Event,
    IllegalTransition,
    Lifecycle,
    State,
    decide,
    read_attempt,
    step,
)
from lab.queue.topology import plan

RETRIES = ("work.retry.1s", "work.retry.5s", "work.retry.25s")
DEAD = "work.dead"

# How each state is reached from DELIVERED, through the public Lifecycle.
ROUTE = {
    State.DELIVERED: (),
    State.HANDLING: (Event.VALID,),
    State.PROCESSED: (Event.VALID, Event.HANDLER_OK),
    State.RETRYING: (Event.VALID, Event.HANDLER_FAILED),
    State.RETRY_SCHEDULED: (Event.VALID, Event.HANDLER_FAILED, Event.PUBLISH_CONFIRMED),
    State.DEAD_LETTERING: (Event.INVALID,),
    State.DEAD_LETTERED: (Event.INVALID, Event.PUBLISH_CONFIRMED),
    State.ACKED: (Event.VALID, Event.HANDLER_OK, Event.ACK_SENT),
    State.REQUEUED: (Event.CHANNEL_CLOSED,),
}


def lifecycle_in(state: State) -> Lifecycle:
    lifecycle = Lifecycle(delivery_tag=7)
    for event in ROUTE[state]:
        lifecycle.fire(event)
    assert lifecycle.state is state
    return lifecycle


def test_every_state_has_a_route():
    assert set(ROUTE) == set(State)


@pytest.mark.parametrize(("row", "target"), TRANSITIONS.items(),
                         ids=[f"{s.name}-{e.name}" for s, e in TRANSITIONS])
def test_every_row_of_the_transition_table(row, target):
    state, event = row
    lifecycle = lifecycle_in(state)
    assert lifecycle.fire(event) is target
    assert lifecycle.state is target and lifecycle.history[-1] is event
    assert step(state, event) is target


ALL_PAIRS = [(s, e) for s in State for e in Event]


@pytest.mark.parametrize("pair", [p for p in ALL_PAIRS if p not in TRANSITIONS],
                         ids=lambda p: f"{p[0].name}-{p[1].name}")
def test_every_pair_without_a_row_raises(pair):
    state, event = pair
    lifecycle = lifecycle_in(state)
    history = list(lifecycle.history)
    with pytest.raises(IllegalTransition, match=f"from {state.name} on {event.name}"):
        lifecycle.fire(event)
    assert lifecycle.state is state and lifecycle.history == history  # nothing changed


def test_the_final_states_have_no_way_out_and_every_other_state_can_reach_one():
    assert not [row for row in TRANSITIONS if row[0] in FINAL]
    for state in set(State) - FINAL:  # losing the channel is always possible, never a loss
        assert TRANSITIONS[state, Event.CHANNEL_CLOSED] is State.REQUEUED


@pytest.mark.parametrize("state", [State.DELIVERED, State.HANDLING, State.RETRYING,
                                   State.DEAD_LETTERING])
def test_the_original_cannot_be_acked_before_its_fate_is_safe(state):
    """Acking before the commit, or before the broker confirmed the copy, could lose it."""
    with pytest.raises(IllegalTransition):
        lifecycle_in(state).fire(Event.ACK_SENT)


def test_a_message_is_acked_only_from_a_state_where_its_fate_is_safe():
    ackable = {state for (state, event) in TRANSITIONS if event is Event.ACK_SENT}
    assert ackable == {State.PROCESSED, State.RETRY_SCHEDULED, State.DEAD_LETTERED}


def test_illegal_transition_is_a_value_error_naming_both():
    error = IllegalTransition(State.ACKED, Event.VALID)
    assert isinstance(error, ValueError)
    assert (error.state, error.event) == (State.ACKED, Event.VALID)


def test_repr_and_done():
    lifecycle = Lifecycle(delivery_tag=42)
    assert repr(lifecycle) == "Lifecycle(tag=42, DELIVERED)" and not lifecycle.done
    lifecycle.fire(Event.NACK_SENT)
    assert repr(lifecycle) == "Lifecycle(tag=42, REQUEUED)" and lifecycle.done


# decide -----------------------------------------------------------------------
def walk(decision: Decision) -> Lifecycle:
    """Fire a decision's path; it must be legal and end acked, through its outcome."""
    lifecycle = Lifecycle()
    for event in decision.path[:-1]:
        lifecycle.fire(event)
    assert lifecycle.state is decision.outcome
    lifecycle.fire(decision.path[-1])
    assert lifecycle.state is State.ACKED
    return lifecycle


def test_a_valid_message_handled_is_acked_after_the_commit_and_nothing_published():
    for attempt in (1, 2, 4, 99):  # even past the limit: it worked, so it is done
        decision = decide(valid=True, handler_ok=True, attempt=attempt, retry_queues=RETRIES,
                          dead_letter=DEAD)
        assert decision == Decision(State.PROCESSED,
                                    (Event.VALID, Event.HANDLER_OK, Event.ACK_SENT))
        assert decision.publish_to is None and decision.headers == {}
        walk(decision)


def test_an_invalid_message_goes_straight_to_the_dead_letter_queue_with_its_reason():
    for attempt in (1, 3):  # whatever attempt it claims: no retry
        decision = decide(valid=False, attempt=attempt, retry_queues=RETRIES,
                          dead_letter=DEAD, reason="malformed JSON: unexpected end of data")
        assert decision.outcome is State.DEAD_LETTERED
        assert decision.path == (Event.INVALID, Event.PUBLISH_CONFIRMED, Event.ACK_SENT)
        assert decision.publish_to == DEAD
        assert decision.headers == {X_DEATH_REASON: INVALID,
                                    X_ERROR: "malformed JSON: unexpected end of data"}
        walk(decision)


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_a_failure_with_attempts_left_goes_to_the_next_retry_queue(attempt):
    decision = decide(valid=True, handler_ok=False, attempt=attempt, retry_queues=RETRIES,
                      dead_letter=DEAD, reason="ConnectionResetError: database gone")
    assert decision.outcome is State.RETRY_SCHEDULED
    assert decision.path == (Event.VALID, Event.HANDLER_FAILED, Event.PUBLISH_CONFIRMED,
                             Event.ACK_SENT)
    assert decision.publish_to == RETRIES[attempt - 1]
    assert decision.headers == {X_ATTEMPT: attempt + 1,
                                X_ERROR: "ConnectionResetError: database gone"}
    walk(decision)


@pytest.mark.parametrize("attempt", [4, 5, 1000])
def test_a_failure_on_the_last_attempt_or_later_is_dead_lettered_with_the_error(attempt):
    decision = decide(valid=True, handler_ok=False, attempt=attempt, retry_queues=RETRIES,
                      dead_letter=DEAD, reason="boom")
    assert decision.outcome is State.DEAD_LETTERED
    assert decision.path == (Event.VALID, Event.DELIVERY_LIMIT, Event.PUBLISH_CONFIRMED,
                             Event.ACK_SENT)
    assert decision.publish_to == DEAD
    assert decision.headers == {X_ATTEMPT: attempt, X_DEATH_REASON: DELIVERY_LIMIT,
                                X_ERROR: "boom"}
    walk(decision)


def test_a_message_that_always_fails_is_handled_once_per_delay_plus_one():
    headers: dict = {}  # the first delivery has no x-attempt
    queues = []
    while True:
        decision = decide(valid=True, handler_ok=False, attempt=read_attempt(headers),
                          retry_queues=RETRIES, dead_letter=DEAD, reason="always")
        queues.append(decision.publish_to)
        if decision.outcome is State.DEAD_LETTERED:
            break
        headers = {**headers, **decision.headers}  # the copy keeps the original's headers
    assert queues == [*RETRIES, DEAD]  # 4 deliveries: the first and one per retry


def test_no_retry_queues_means_the_first_failure_is_final():
    decision = decide(valid=True, handler_ok=False, retry_queues=(), dead_letter=DEAD,
                      reason="boom")
    assert decision.publish_to == DEAD and decision.headers[X_ATTEMPT] == 1


def test_retry_k_is_the_topologys_retry_queue_k():
    topology = plan("lab.tasks", "lab.tasks.work", (1, 5, 25), "lab.tasks.dead")
    names = [queue.name for queue in topology.retries]
    for attempt in range(1, topology.max_attempts + 1):
        decision = decide(valid=True, handler_ok=False, attempt=attempt, retry_queues=names,
                          dead_letter=topology.dead_letter.name, reason="boom")
        if attempt < topology.max_attempts:
            assert decision.publish_to == topology.retry_queue(attempt).name
        else:
            assert decision.publish_to == "lab.tasks.dead"


def test_the_error_is_one_short_line_for_a_header():
    traceback = "Traceback (most recent call last):\n  File ...\n" + "x" * 1000
    decision = decide(valid=True, handler_ok=False, retry_queues=RETRIES, dead_letter=DEAD,
                      reason=traceback)
    error = decision.headers[X_ERROR]
    assert "\n" not in error and len(error) == 200 and error.endswith("...")
    assert error.startswith("Traceback (most recent call last): File ...")


@pytest.mark.parametrize("arguments", [
    {"valid": True},  # handled, but no verdict
    {"valid": False, "handler_ok": True},  # an invalid message cannot have been handled
    {"valid": False, "handler_ok": False, "reason": "x"},
    {"valid": True, "handler_ok": False},  # a failure without a reason
    {"valid": False, "reason": "  \n"},
    {"valid": True, "handler_ok": True, "attempt": 0},
    {"valid": True, "handler_ok": True, "attempt": -1},
    {"valid": True, "handler_ok": True, "attempt": True},
    {"valid": True, "handler_ok": True, "attempt": 2.0},
])
def test_bad_arguments_are_refused(arguments):
    with pytest.raises(ValueError):
        decide(retry_queues=RETRIES, dead_letter=DEAD, **arguments)


# the x-attempt header ---------------------------------------------------------
@pytest.mark.parametrize(("headers", "attempt"), [
    (None, 1), ({}, 1), ({"other": "x"}, 1), ({X_ATTEMPT: None}, 1),
    ({X_ATTEMPT: 1}, 1), ({X_ATTEMPT: 2}, 2), ({X_ATTEMPT: 2**40}, 2**40),
])
def test_the_attempt_header_absent_is_one(headers, attempt):
    assert read_attempt(headers) == attempt


@pytest.mark.parametrize("value", ["2", 2.0, True, False, 0, -3, b"2", [2], {"n": 2}])
def test_a_garbled_attempt_header_makes_the_message_invalid(value):
    with pytest.raises(InvalidEvent, match=f"^bad {X_ATTEMPT} header: ") as caught:
        read_attempt({X_ATTEMPT: value})
    decision = decide(valid=False, retry_queues=RETRIES, dead_letter=DEAD,
                      reason=caught.value.reason)
    assert decision.publish_to == DEAD and decision.headers[X_DEATH_REASON] == INVALID


def test_a_huge_garbled_header_gives_a_short_reason():
    with pytest.raises(InvalidEvent) as caught:
        read_attempt({X_ATTEMPT: "9" * 10_000})
    assert len(caught.value.reason) < 80
