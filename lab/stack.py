"""``python -m lab up`` and ``down``: the whole stack, started and stopped by one command each.

``up`` starts, in this order, each once the one before answers:

1. the migrations, applied once here (as ``lab_owner``), so that N instances
   starting together do not queue on the migrator's lock;
2. N Task API instances on ports ``API_PORT``, ``API_PORT + 1`` ... , each
   named ``api-K`` in its ``X-Instance`` header, on PostgreSQL and the Redis
   read cache -- stateless: whatever one instance would need from another
   lives in PostgreSQL or Redis;
3. the balancers in front of the same instances: ``lab.lb`` on ``LB_PORT``
   and NGINX (``lab.lb.nginx``) on ``NGINX_PORT``, or one of them.

Every process runs in the background, in a session of its own (``processes.spawn``),
its output in ``.run/stack/<name>.log``. What was started is written to
``.run/stack/stack.json`` as soon as it starts, so ``down`` can stop it even if
``up`` failed half-way; and ``up`` that fails stops what it had started
before it reports. ``down`` stops the balancers first (no new requests reach an
instance that is going), then the instances, each with SIGTERM (it finishes
the requests in flight) and SIGKILL only if it is still there after 10 s.

What production uses instead: a process manager (systemd units, supervisord),
containers (Docker Compose's ``up``/``down`` is the same idea with images and
networks) or an orchestrator (Kubernetes Deployments and Services, whose
readiness probes are step 2's wait).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg

from lab import processes
from lab import settings as lab_settings
from lab.cli import os_reason
from lab.lb import nginx

RUN_DIR = lab_settings.REPO_ROOT / ".run" / "stack"
HOST = "127.0.0.1"
READY_TIMEOUT = 30.0  # seconds for a process to answer after it starts
BALANCERS = ("lab", "nginx", "both")


class StackError(Exception):
    """Something the user must fix; one line."""


@dataclass(frozen=True)
class Started:
    name: str  # api-1 ... , lab.lb, nginx
    pid: int
    port: int
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


def _wait_ready(item: Started, url: str, log: Path) -> None:
    """Until ``url`` answers 200; a process that exits or a timeout is a StackError."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not processes.alive(item.pid):
            lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
            raise StackError(f"{item.name} exited at start: {lines[-1] if lines else 'no output'}"
                             f" (log: {log})")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    raise StackError(f"{item.name} did not answer {url} within {READY_TIMEOUT:g} s (log: {log})")


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
       say=print) -> list[Started]:
    """Start the stack; what was started. Raises StackError, having stopped it again."""
    assert balancer in BALANCERS and instances >= 1
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


def _start(name: str, argv: list[str], port: int, program: str, run_dir: Path,
           say) -> Started:
    log = run_dir / f"{name}.log"
    log.unlink(missing_ok=True)
    item = Started(name, processes.spawn(argv, log), port, program)
    _write(run_dir, [*_read(run_dir), item])  # written before the wait: 'down' can stop it
    _wait_ready(item, f"http://{HOST}:{port}/health", log)
    say(f"{name:<9} http://{HOST}:{port}  (pid {item.pid})")
    return item


def down(run_dir: Path = RUN_DIR, say=print) -> list[Started]:
    """Stop what ``up`` started, balancers first; what was stopped."""
    stopped = []
    for item in sorted(_read(run_dir), key=lambda s: s.name.startswith("api-")):  # fronts first
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
