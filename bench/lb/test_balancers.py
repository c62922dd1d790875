"""The hand-built balancer against NGINX, in front of the same Task API instances.

Two backends, each ``python -m lab.api --store memory`` in its own process,
named ``api-1`` and ``api-2`` (``X-Instance``), each holding the same task 1.
In front of them, each in its own process: ``lab.lb`` with one backend and
with both, and NGINX with one backend and with both, rendered by
``lab.lb.nginx`` from the same backend list and numbers, with ``keepalive`` at
least the client connections, ``worker_processes auto`` -- as an operator
would set it up on this machine. ``wrk`` (``bench/wrk.py``) drives
``GET /tasks/1`` with 50 keep-alive connections on one thread for 5 s: the
backend answers a small task from memory, so the balancer's own cost shows.

Rounds alternate: direct to api-1, then for one backend lab.lb, NGINX, then
for two lab.lb, NGINX; three rounds, medians. Then one run more per balancer
with two backends counts who answered each response (wrk's Lua ``response``
hook, which slows wrk: not a timed run), for the round-robin shares.

Two cores hold everything here: wrk, the balancer and the backends. The
figures say how the balancers compare on one small machine, not what either
does on its own hardware.
"""

from __future__ import annotations

import contextlib
import json
import re
import statistics
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from bench import wrk
from bench.registry import Comparison
from bench.servers import create, free_port, running
from lab.lb import nginx

ROUNDS, SECONDS, QUICK_SECONDS = 3, 5, 1
CONNECTIONS = 50
PATH = "/tasks/1"
BACKENDS = ("api-1", "api-2")
NGINX_NAME = "NGINX (upstream, keepalive)"


def measurement(metric: str, backends: int, side: str) -> str:
    return f"lb/{metric}/b{backends}/{side}"


def _rows() -> list[Comparison]:
    rows = []
    for n in (1, 2):
        where = f"{n} backend{'s' if n > 1 else ''}"
        rows.append(Comparison("lb", f"GET {PATH} req/s, {where}", measurement("rps", n, "lab"),
                               measurement("rps", n, "nginx"), NGINX_NAME, (">=", 0.6)))
        for metric, target in (("p50", None), ("p99", ("<=", 2.0)), ("p99.9", None)):
            rows.append(Comparison("lb", f"GET {PATH} latency {metric}, {where}",
                                   measurement(metric, n, "lab"), measurement(metric, n, "nginx"),
                                   NGINX_NAME, target))
    rows.append(Comparison("lb", f"GET {PATH} req/s through the balancer vs direct, 1 backend",
                           measurement("rps", 1, "lab"), measurement("rps", 1, "direct"),
                           "no balancer (wrk straight to api-1)"))
    rows.append(Comparison("lb", "round-robin: share of requests answered by api-1, 2 backends, %",
                           measurement("share", 2, "lab"), measurement("share", 2, "nginx"),
                           NGINX_NAME))
    return rows


COMPARISONS = _rows()


@pytest.fixture(scope="module")
def fronts(tmp_path_factory) -> Iterator[dict[str, int]]:
    """side → port: direct, lab-1, lab-2, nginx-1, nginx-2; all stopped at the end."""
    run = tmp_path_factory.mktemp("lb")
    ports = {name: free_port() for name in BACKENDS}
    with contextlib.ExitStack() as stack:
        for name, port in ports.items():
            stack.enter_context(running(
                [sys.executable, "-m", "lab.api", "--store", "memory", "--port", str(port),
                 "--instance", name, "--no-access-log"], port))
            user = create(port, "/users", {"name": "Ada", "email": "ada@example.com",
                                          "password": "secret1"})
            task = create(port, "/tasks", {"title": "Measure the balancer", "userId": user["id"]})
            assert task["id"] == int(PATH.rsplit("/", 1)[1])
        backends = [f"127.0.0.1:{port}" for port in ports.values()]
        sides = {"direct": ports["api-1"]}
        for n in (1, 2):
            port = sides[f"lab-{n}"] = free_port()
            stack.enter_context(running(
                [sys.executable, "-m", "lab.lb", "--port", str(port), "--strategy",
                 "round-robin", *(w for b in backends[:n] for w in ("--backend", b))], port))
            port = sides[f"nginx-{n}"] = free_port()
            nginx.start(backends[:n], port=port, connections=CONNECTIONS,
                        run_dir=run / f"nginx-{n}")
            stack.callback(nginx.stop, run / f"nginx-{n}")
        yield sides


def test_balancers_side_by_side(fronts, tmp_path, record, quick, capsys):
    rounds, seconds = (1, QUICK_SECONDS) if quick else (ROUNDS, SECONDS)
    timed, counting = tmp_path / "timed.lua", tmp_path / "counting.lua"
    timed.write_text(wrk.script())
    counting.write_text(wrk.script(list(BACKENDS)))

    def show(line: str) -> None:
        with capsys.disabled():
            print(f"\n{line}", file=sys.stderr, end="")

    seen: dict[str, list[wrk.WrkRun]] = {}
    for round_no in range(1, rounds + 1):
        for side in ("direct", "lab-1", "nginx-1", "lab-2", "nginx-2"):  # interleaved
            seen.setdefault(side, []).append(
                wrk.run(f"http://127.0.0.1:{fronts[side]}{PATH}", seconds, CONNECTIONS, timed))
        show(f"lb round {round_no}/{rounds} req/s: " + ", ".join(
            f"{side} {runs[-1].requests_per_second:,.0f}" for side, runs in seen.items()))
    shares = {side: wrk.run(f"http://127.0.0.1:{fronts[side]}{PATH}", seconds, CONNECTIONS,
                            counting) for side in ("lab-2", "nginx-2")}
    show("lb shares: " + ", ".join(f"{side} {run.counts}" for side, run in shares.items()))

    failed = [f"{side}: {r.non_2xx} non-2xx, {r.socket_errors} socket errors"
              for side, runs in [*seen.items(), *((s, [r]) for s, r in shares.items())]
              for r in runs if r.non_2xx or r.socket_errors]
    assert not failed, "; ".join(failed)
    for side, runs in seen.items():
        n, who = (1, "direct") if side == "direct" else (int(side[-1]), side.split("-")[0])
        record(measurement("rps", n, who), statistics.median(r.requests_per_second
                                                             for r in runs), "ops/s")
        for metric, attribute in (("p50", "p50_ms"), ("p99", "p99_ms"), ("p99.9", "p999_ms")):
            record(measurement(metric, n, who),
                   statistics.median(getattr(r, attribute) for r in runs), "ms")
    for side, run in shares.items():
        assert sum(run.counts.values()) > 0 and set(run.counts) == set(BACKENDS), run.counts
        record(measurement("share", 2, side.split("-")[0]),
               100 * run.counts["api-1"] / sum(run.counts.values()), "%")


def test_the_backends_answer_through_every_front(fronts):
    """Like for like: every side answers the same task, and the balancers name a backend."""
    bodies = {}
    for side, port in fronts.items():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{PATH}", timeout=5) as answer:
            bodies[side] = json.load(answer)
            assert re.fullmatch(r"api-[12]", answer.headers["X-Instance"]), side
    # The same task on every side (each backend made its own copy: timestamps differ).
    assert len({(b["data"]["id"], b["data"]["title"], json.dumps(b["data"]["user"]))
                for b in bodies.values()}) == 1

