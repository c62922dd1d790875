"""Choosing backends: the sequences NGINX documents, shares by weight, exclusion, availability."""

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.lb.balancer import BALANCERS, Backend, Balancer, LeastConnections, RoundRobin


def pool(*weights: int) -> list[Backend]:
    return [Backend("127.0.0.1", 8001 + i, weight) for i, weight in enumerate(weights)]


def names(backends: list[Backend], picks: list[Backend | None]) -> str:
    letters = {b: "abcdefgh"[i] for i, b in enumerate(backends)}
    return "".join(letters[p] if p is not None else "-" for p in picks)


@pytest.mark.parametrize("policy", [RoundRobin, LeastConnections])
def test_smooth_weighted_round_robin_is_nginx_sequence(policy):
    # With nothing in flight, least-conn ties every time and falls back to the same order.
    backends = pool(5, 1, 1)
    balancer = policy(backends)
    picks = [balancer.choose() for _ in range(14)]
    assert names(backends, picks) == "aabacaa" * 2


@pytest.mark.parametrize("weights", [(1, 1, 1), (3, 2, 1), (5, 1, 1), (1, 10), (7,)])
def test_every_round_of_sum_weights_picks_gives_exact_shares(weights):
    backends = pool(*weights)
    balancer = RoundRobin(backends)
    for _ in range(20):
        picks = Counter(balancer.choose() for _ in range(sum(weights)))
        assert [picks[b] for b in backends] == list(weights)


@given(st.lists(st.integers(1, 20), min_size=1, max_size=6), st.integers(1, 5))
def test_shares_are_proportional_to_weights(weights, rounds):
    backends = pool(*weights)
    balancer = RoundRobin(backends)
    picks = Counter(balancer.choose() for _ in range(rounds * sum(weights)))
    assert [picks[b] for b in backends] == [rounds * w for w in weights]


def test_heavy_backend_turns_are_spread_out():
    backends = pool(3, 1, 1)
    balancer = RoundRobin(backends)
    assert names(backends, [balancer.choose() for _ in range(5)]) == "abaca"  # not "aaabc"


def test_exclusion_skips_backends_already_tried():
    a, b, c = backends = pool(1, 1, 1)
    balancer = RoundRobin(backends)
    picks = [balancer.choose(exclude={a}) for _ in range(4)]
    assert names(backends, picks) == "bcbc"
    assert balancer.choose(exclude=[a, b]) is c
    assert balancer.choose(exclude=set(backends)) is None


@pytest.mark.parametrize("policy", [RoundRobin, LeastConnections])
def test_unavailable_backends_are_skipped_and_all_down_is_none(policy):
    backends = pool(1, 1, 1)
    down = {backends[1]}
    balancer = policy(backends, available=lambda b: b not in down)
    assert names(backends, [balancer.choose() for _ in range(4)]) == "acac"
    down.update(backends)
    assert balancer.choose() is None
    down.clear()
    assert balancer.choose() is not None


def test_least_conn_picks_the_fewest_active_requests():
    a, b, c = backends = pool(1, 1, 1)
    a.active, b.active, c.active = 3, 1, 2
    balancer = LeastConnections(backends)
    assert [balancer.choose() for _ in range(3)] == [b, b, b]
    assert balancer.choose(exclude={b}) is c


def test_least_conn_compares_active_requests_relative_to_weight():
    heavy, light = backends = pool(4, 1)
    heavy.active, light.active = 3, 1  # 3/4 < 1/1
    balancer = LeastConnections(backends)
    assert balancer.choose() is heavy
    heavy.active = 5  # 5/4 > 1/1
    assert balancer.choose() is light


def test_least_conn_breaks_ties_round_robin_among_the_tied_only():
    a, b, c = backends = pool(1, 1, 1)
    c.active = 1
    balancer = LeastConnections(backends)
    assert names(backends, [balancer.choose() for _ in range(4)]) == "abab"
    a.active, b.active, c.active = 2, 2, 2  # c never took part in the ties above: its score is 0
    assert names(backends, [balancer.choose() for _ in range(6)]) == "abcabc"


def test_least_conn_follows_the_requests_as_they_start_and_finish():
    backends = pool(1, 1)
    balancer = LeastConnections(backends)
    first = balancer.choose()
    first.started()
    second = balancer.choose()
    assert second is not first
    second.started()
    first.finished()
    assert balancer.choose() is first


def test_backend_counters_and_repr():
    backend = Backend("10.0.0.5", 8001, weight=2)
    backend.started()
    backend.started()
    backend.finished(failed=True)
    assert (backend.requests, backend.active, backend.failures) == (2, 1, 1)
    assert backend.address == "10.0.0.5:8001"
    assert repr(backend) == (
        "Backend(10.0.0.5:8001, weight=2, active=1, requests=2, failures=1)")
    backend.finished()
    with pytest.raises(AssertionError):
        backend.finished()


@pytest.mark.parametrize(("port", "weight"), [(0, 1), (70000, 1), (8001, 0), (8001, 1.5),
                                              (True, 1), (8001, True)])
def test_bad_backends(port, weight):
    with pytest.raises(ValueError):
        Backend("127.0.0.1", port, weight)


def test_bad_pools():
    with pytest.raises(ValueError, match="at least one"):
        RoundRobin([])
    backend = Backend("127.0.0.1", 8001)
    with pytest.raises(ValueError, match="twice"):
        RoundRobin([backend, backend])


def test_balancer_names_and_repr():
    assert set(BALANCERS) == {"round-robin", "least-conn"}
    assert all(issubclass(policy, Balancer) for policy in BALANCERS.values())
    balancer = RoundRobin(pool(2, 1))
    balancer.choose()
    assert repr(balancer) == "RoundRobin(127.0.0.1:8001=-1, 127.0.0.1:8002=1)"
