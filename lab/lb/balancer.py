"""Choosing a backend for each request: smooth weighted round-robin, or least connections.

**Smooth weighted round-robin** (NGINX's default, ``ngx_http_upstream_round_robin.c``).
Each backend keeps a ``current`` score, all starting at 0. To choose: add
every candidate's weight to its score, take the candidate with the highest
score, and lower that one's score by the sum of the weights. With weights
a=5, b=1, c=1 the scores go (5,1,1) -> a, (3,2,2) -> a, (1,3,3) -> b,
(6,-3,4) -> a, (4,-2,5) -> c, (9,-1,-1) -> a, (7,0,0) -> a, back to (0,0,0):
``a a b a c a a``. In every run of sum(weights) choices each backend is
chosen exactly ``weight`` times, and a heavy backend's turns are spread out
instead of bunched (the naive ``a a a a a b c`` sends five requests in a row
to one server). Invariant: the scores always sum to 0 (each choice adds the
total once and takes it away once).

**Least connections** (NGINX's ``least_conn``): the candidate with the fewest
requests in flight *relative to its weight* (``active / weight``, compared as
``a.active * b.weight < b.active * a.weight`` to stay in integers); when
several tie, smooth weighted round-robin among them, as NGINX does, so that
an idle pool is still shared by weight. It suits requests of uneven cost: a
slow backend accumulates requests in flight and is chosen less.

Both skip the backends that ``available(backend)`` refuses (wire it to
``health.Health.available``) and those in ``exclude`` (the ones this request
already tried, for a retry), and return None when nothing is left: the
proxy answers 502. The proxy keeps the counters of ``Backend`` with
``started()`` and ``finished()``. How NGINX differs: it also lowers a failing
peer's weight for a while (``effective_weight``) and raises it back slowly;
it shares this state between worker processes in a ``zone``; ``backup``,
``max_conns`` and ``slow_start`` have no counterpart here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass


@dataclass(eq=False)  # eq=False: a backend is itself, hashable by identity, usable in sets
class Backend:
    """One upstream server and what the proxy has counted about it."""

    host: str
    port: int
    weight: int = 1
    requests: int = 0  # sent to it, ever
    failures: int = 0  # of those, failed (connection refused, timeout, bad response)
    active: int = 0  # in flight now

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 1:
            raise ValueError(f"weight must be a positive integer, got {self.weight!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) \
                or not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, got {self.port!r}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def started(self) -> None:
        """A request was sent to this backend."""
        self.requests += 1
        self.active += 1

    def finished(self, failed: bool = False) -> None:
        """A request sent to this backend is over."""
        assert self.active > 0, f"{self!r} finished a request it never started"
        self.active -= 1
        self.failures += failed

    def __repr__(self) -> str:
        return (f"Backend({self.address}, weight={self.weight}, active={self.active}, "
                f"requests={self.requests}, failures={self.failures})")


def _always(backend: Backend) -> bool:
    return True


class Balancer(ABC):
    """What every policy shares: the backends, the availability test, the candidates."""

    def __init__(self, backends: Iterable[Backend],
                 available: Callable[[Backend], bool] = _always) -> None:
        self.backends = list(backends)
        if not self.backends:
            raise ValueError("a balancer needs at least one backend")
        if len(set(self.backends)) != len(self.backends):
            raise ValueError("the same Backend object is listed twice")
        self.available = available
        self._current = dict.fromkeys(self.backends, 0)  # smooth round-robin scores

    @abstractmethod
    def choose(self, exclude: Collection[Backend] = ()) -> Backend | None:
        """The backend for the next request, or None if none is available."""

    def _candidates(self, exclude: Collection[Backend]) -> list[Backend]:
        return [b for b in self.backends if b not in exclude and self.available(b)]

    def _smooth(self, candidates: list[Backend]) -> Backend:
        """Smooth weighted round-robin among ``candidates`` (see the module docstring)."""
        current = self._current
        total = 0
        best = candidates[0]
        for backend in candidates:
            current[backend] += backend.weight
            total += backend.weight
            if current[backend] > current[best]:  # strictly: on a tie the earlier one wins
                best = backend
        current[best] -= total
        assert sum(current.values()) == 0, current
        return best

    def __repr__(self) -> str:
        scores = ", ".join(f"{b.address}={self._current[b]}" for b in self.backends)
        return f"{type(self).__name__}({scores})"


class RoundRobin(Balancer):
    """Smooth weighted round-robin over the available backends."""

    def choose(self, exclude: Collection[Backend] = ()) -> Backend | None:
        candidates = self._candidates(exclude)
        return self._smooth(candidates) if candidates else None


class LeastConnections(Balancer):
    """Fewest requests in flight per unit of weight; ties by smooth weighted round-robin."""

    def choose(self, exclude: Collection[Backend] = ()) -> Backend | None:
        candidates = self._candidates(exclude)
        if not candidates:
            return None
        best = candidates[0]
        for backend in candidates[1:]:
            if backend.active * best.weight < best.active * backend.weight:
                best = backend
        tied = [b for b in candidates if b.active * best.weight == best.active * b.weight]
        return best if len(tied) == 1 else self._smooth(tied)


BALANCERS: dict[str, type[Balancer]] = {  # the names lab.lb.nginx uses for the same choice
    "round-robin": RoundRobin,
    "least-conn": LeastConnections,
}
