"""``python -m lab up`` and ``down``: the whole stack, started and stopped by one command each.

``up`` starts, in this order, each once the one before is ready:

1. the migrations, applied once here (as ``lab_owner``), so that N instances
   starting together do not queue on the migrator's lock;
2. with the PostgreSQL store and ``--workers W`` (W >= 1): challenge 5's queue.
   First the RabbitMQ topology is declared once, as ``python -m lab.queue
   topology`` does -- an unreachable broker stops ``up`` here, before anything
   runs. Then W workers (``worker-1`` ...), each ready when its log says it is
   consuming the work queue, then one relay, ready when its log says it has
   connected to PostgreSQL and RabbitMQ (a readiness signal read from the log, as
   Compose healthchecks or testcontainers' "wait for log message" do);
3. N Task API instances on ports ``API_PORT``, ``API_PORT + 1`` ... , each
   named ``api-K`` in its ``X-Instance`` header, on PostgreSQL and the Redis
   read cache -- stateless: whatever one instance would need from another
   lives in PostgreSQL or Redis;
4. the balancers in front of the same instances: ``lab.lb`` on ``LB_PORT``
   and NGINX (``lab.lb.nginx``) on ``NGINX_PORT``, or one of them.

Consumers before producers, and producers before the doors open: once a
balancer answers, every event the API writes to the outbox is published by a
relay and consumed by a worker already running. (Nothing would be lost in
another order -- the outbox keeps the events until a relay runs -- but they
would wait.) The memory store writes no outbox, so ``--workers`` with it is an
error rather than queue processes with nothing to do.

Every process runs in the background, in a session of its own (``processes.spawn``),
its output in ``.run/stack/<name>.log``. What was started is written to
``.run/stack/stack.json`` as soon as it starts, so ``down`` can stop it even if
``up`` failed half-way; and ``up`` that fails stops what it had started
before it reports. ``down`` stops in the reverse order of ``up``: the balancers
first (no new requests reach an instance that is going), then the instances
(each finishes the requests in flight), then the relay (after the API, so the
events written last are still published: it finishes its batch), then the
workers (each finishes or gives back the deliveries it holds) -- each with
SIGTERM, and SIGKILL only if it is still there after 10 s.

What production uses instead: a process manager (systemd units, supervisord),
containers (Docker Compose's ``up``/``down`` is the same idea with images and
networks, ``depends_on`` with a healthcheck is the order above) or an
orchestrator (Kubernetes Deployments and Services, whose readiness probes are
the waits above).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg

from lab import processes
from lab import settings as lab_settings
from lab.cli import os_reason
from lab.lb import nginx
from lab.queue import topology as queue_topology

RUN_DIR = lab_settings.REPO_ROOT / ".run" / "stack"
HOST = "127.0.0.1"
READY_TIMEOUT = 30.0  # seconds for a process to answer after it starts
BALANCERS = ("lab", "nginx", "both")
WORKERS = 2  # queue workers started with the PostgreSQL store, unless told otherwise


class StackError(Exception):
    """Something the user must fix; one line."""


@dataclass(frozen=True)
class Started:
    name: str  # worker-1 ... , relay, api-1 ... , lab.lb, nginx
    pid: int
    port: int  # 0 for the queue processes, which listen on none
    program: str  # a word of its command line, to tell our process from a recycled pid


def _state(run_dir: Path) -> Path:
    return run_dir / "stack.json"


def _read(run_dir: Path) -> list[Started]:
    try:
        return [Started(**item) for item in json.loads(_state(run_dir).read_text())]
    except FileNotFoundError:
        return []
    except (ValueError, TypeError) as exc:
        raise StackError(f"{_state(run_dir)} is not what 'up' writes ({exc}); "
                         "stop the processes by hand and delete it") from None


def _write(run_dir: Path, started: list[Started]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    _state(run_dir).write_text(json.dumps([asdict(s) for s in started], indent=1))


def _running(started: list[Started]) -> list[Started]:
    return [s for s in started if processes.is_running(s.pid, s.program)]


def _port_free(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise StackError(f"cannot listen on {HOST}:{port}: {os_reason(exc)}") from None


def _log(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.log"


def _wait_ready(item: Started, ready: Callable[[], bool], what: str, run_dir: Path) -> None:
    """Until ``ready()``; a process that exits, or a timeout, is a StackError."""
    log = _log(run_dir, item.name)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not processes.alive(item.pid):
            lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
            raise StackError(f"{item.name} exited at start: {lines[-1] if lines else 'no output'}"
                             f" (log: {log})")
        if ready():
            return
        time.sleep(0.1)
    raise StackError(f"{item.name} did not {what} within {READY_TIMEOUT:g} s (log: {log})")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False  # not listening yet, or 503 (HTTPError) until its database answers


async def _migrate(url: str) -> None:
    from lab.db.migrator import migrate
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StackError(f"cannot connect to PostgreSQL to migrate: {os_reason(exc)} "
                         "(make services starts it)") from None
    try:
        await migrate(conn)
    finally:
        await conn.close()


def up(instances: int, balancer: str = "both", strategy: str = "round-robin",
       store: str = "postgres", cache: bool = True, run_dir: Path = RUN_DIR,
       say=print, workers: int | None = None, failure_rate: float = 0.0) -> list[Started]:
    """Start the stack; what was started. Raises StackError, having stopped it again.

    ``workers``: queue workers (with one relay); None is WORKERS with the PostgreSQL
    store and none with the memory store, which writes no outbox. ``failure_rate``: the
    share of attempts each worker fails on purpose, to watch retries and the DLQ.
    """
    assert balancer in BALANCERS and instances >= 1
    if workers is None:
        workers = WORKERS if store == "postgres" else 0
    if workers < 0:
        raise ValueError(f"workers must be 0 or more, got {workers}")
    if workers and store != "postgres":
        raise ValueError(f"--workers {workers} needs --store postgres: the memory store "
                         "writes no outbox, so no event would reach the queue")
    s = lab_settings.load()
    if running := _running(_read(run_dir)):
        raise StackError(f"the stack is already up ({', '.join(r.name for r in running)}); "
                         "python -m lab down stops it")
    api_ports = [s.api_port + k for k in range(instances)]
    fronts = {"lab": [("lab.lb", s.lb_port)], "nginx": [("nginx", s.nginx_port)],
              "both": [("lab.lb", s.lb_port), ("nginx", s.nginx_port)]}[balancer]
    for port in [*api_ports, *(port for _, port in fronts)]:
        _port_free(port)  # all checked before anything starts
    if store == "postgres":
        say("migrations: applying any pending, as the schema's owner")
        asyncio.run(_migrate(s.database_owner_url))
    started: list[Started] = []
    _write(run_dir, started)  # forget a previous run's processes: none of them runs
    try:
        if workers:
            started += _start_queue(s, workers, failure_rate, run_dir, say)
        for k, port in enumerate(api_ports, start=1):
            name = f"api-{k}"
            argv = [sys.executable, "-m", "lab.api", "--port", str(port), "--store", store,
                    "--no-migrate", "--instance", name, "--no-access-log"]
            if cache:
                argv += ["--redis-url", s.redis_url]
            started.append(_start(name, argv, port, "lab.api", run_dir, say))
        backends = [f"{HOST}:{port}" for port in api_ports]
        for name, port in fronts:
            if name == "lab.lb":
                argv = [sys.executable, "-m", "lab.lb", "--port", str(port),
                        "--strategy", strategy, *(w for b in backends for w in ("--backend", b))]
                started.append(_start(name, argv, port, "lab.lb", run_dir, say))
            else:
                try:
                    pid = nginx.start(backends, port=port, strategy=strategy,
                                      run_dir=run_dir / "nginx")
                except nginx.NginxError as exc:
                    raise StackError(f"nginx: {exc}") from None
                started.append(Started(name, pid, port, "nginx"))
                _write(run_dir, started)
                say(f"nginx     http://{HOST}:{port}  (pid {pid})")
    except BaseException:
        down(run_dir, say=lambda line: None)  # nothing half-started is left behind
        raise
    return started


def _spawn(name: str, argv: list[str], program: str, run_dir: Path, port: int = 0) -> Started:
    log = _log(run_dir, name)
    log.unlink(missing_ok=True)
    item = Started(name, processes.spawn(argv, log), port, program)
    _write(run_dir, [*_read(run_dir), item])  # written before the wait: 'down' can stop it
    return item


def _start(name: str, argv: list[str], port: int, program: str, run_dir: Path,
           say) -> Started:
    """An HTTP server, ready once its /health answers 200."""
    item = _spawn(name, argv, program, run_dir, port)
    url = f"http://{HOST}:{port}/health"
    _wait_ready(item, lambda: _answers(url), f"answer {url}", run_dir)
    say(f"{name:<9} http://{HOST}:{port}  (pid {item.pid})")
    return item


def _start_queue(s: lab_settings.Settings, workers: int, failure_rate: float, run_dir: Path,
                 say) -> list[Started]:
    """The topology, declared once; ``workers`` workers, then the relay, each ready once its
    log says so (``worker-K: consuming QUEUE``, ``connected to PostgreSQL and RabbitMQ``)."""
    topology = queue_topology.plan_from(s)
    try:
        asyncio.run(queue_topology.apply(s.rabbitmq_url, topology))
    except queue_topology.TopologyError as exc:  # unreachable, refused: one line
        raise StackError(str(exc)) from None
    started: list[Started] = []
    queue = [sys.executable, "-m", "lab.queue"]
    work = topology.work.name
    for k in range(1, workers + 1):
        name = f"worker-{k}"
        argv = [*queue, "worker", "--name", name, "--failure-rate", str(failure_rate)]
        started.append(_start_logged(name, argv, f"{name}: consuming {work}",
                                     f"start consuming {work}", run_dir))
        say(f"{name:<9} consuming {work}  (pid {started[-1].pid})")
    started.append(_start_logged("relay", [*queue, "relay"],
                                 "connected to PostgreSQL and RabbitMQ",
                                 "connect to PostgreSQL and RabbitMQ", run_dir))
    say(f"relay     outbox -> {topology.exchange.name}  (pid {started[-1].pid})")
    return started


def _start_logged(name: str, argv: list[str], line: str, what: str, run_dir: Path) -> Started:
    """A process with no port, ready once ``line`` appears in its log."""
    item = _spawn(name, argv, "lab.queue", run_dir)
    log = _log(run_dir, name)
    _wait_ready(item, lambda: log.exists() and line in log.read_text(errors="replace"), what,
                run_dir)
    return item


def _stop_rank(item: Started) -> int:
    """``up``'s order reversed: balancers, instances, the relay, then the workers."""
    if item.name.startswith("api-"):
        return 1
    if item.name == "relay":
        return 2  # after the API: it publishes what the instances wrote last
    if item.name.startswith("worker-"):
        return 3  # after the relay: they consume what it published last
    return 0  # a balancer: no new request reaches an instance that is going


def down(run_dir: Path = RUN_DIR, say=print) -> list[Started]:
    """Stop what ``up`` started, in ``_stop_rank``'s order; what was stopped."""
    stopped = []
    for item in sorted(_read(run_dir), key=_stop_rank):
        if item.program == "nginx":
            if nginx.stop(run_dir / "nginx") is None:
                continue  # it was not running
            killed = False
        elif processes.is_running(item.pid, item.program):
            killed = processes.stop(item.pid)
        else:
            continue
        stopped.append(item)
        say(f"{item.name}: stopped (pid {item.pid}{', killed after 10 s' if killed else ''})")
    _state(run_dir).unlink(missing_ok=True)
    return stopped
