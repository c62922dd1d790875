"""NGINX set up as lab.lb's twin: rendered from the same backends and numbers, started, stopped.

Challenge 4 measures the hand-built balancer against NGINX in front of the same
API instances. That means something only if NGINX is tuned as a careful
operator would (keep-alive pool, HTTP/1.1 upstream, passive health, retries on
errors only) and runs with *the same numbers* as lab.lb. So the numbers live
once, in ``tuning.py`` (``Tuning``, ``DEFAULTS``), which lab.lb's proxy and this
module both import (its names are re-exported here), and the configuration is
rendered from ``infra/nginx/lb.conf.template``, where each directive says why
it is there. Nobody edits a config by hand.

``render(template, backends, ...)`` is pure: text in, text out, ValueError for
a bad argument. ``start``/``stop``/``status`` do the I/O: write
``<run_dir>/nginx.conf``, check it with ``nginx -t``, start NGINX on the prefix
``<repo>/``, wait (bounded) until its port answers, stop it by the pid in its
pid file. Linux only: liveness is read from ``/proc``, because a dead master
that nobody reaps (PID 1 of a container may not) is a zombie, not a server.

    python -m lab.lb.nginx start --port 8081 --backend 127.0.0.1:8001 --backend 127.0.0.1:8002=2
    python -m lab.lb.nginx status | stop | render ...
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from lab import processes
from lab import settings as lab_settings
from lab.cli import OneLineParser, os_reason, positive
from lab.cli import port as tcp_port
from lab.lb.tuning import (  # the shared numbers and flags
    CONNECTIONS,
    DEFAULTS,
    ERROR_MESSAGES,
    HOST_PATTERN,
    STRATEGIES,
    Backend,
    Tuning,
    add_tuning_arguments,
    backend_argument,
    parse_backend,
    tuning_from_arguments,
)

PROG = "python -m lab.lb.nginx"
HOST = "127.0.0.1"  # loopback only, as every server of the lab
TEMPLATE = lab_settings.REPO_ROOT / "infra" / "nginx" / "lb.conf.template"
RUN_DIR = ".run/nginx-lb"  # relative to the prefix (the repository); git ignores .run/
NGINX_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin")  # not on a user's PATH
START_TIMEOUT = 10.0  # seconds for nginx -t, for the start, and for the port to answer
STOP_TIMEOUT = 10.0  # seconds of graceful shutdown (SIGQUIT) before SIGTERM, then SIGKILL


def read_template(path: Path = TEMPLATE) -> str:
    return path.read_text(encoding="utf-8")


def _duration(seconds: float) -> str:
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def render(template: str, backends: Sequence[Backend | str], *, port: int,
           strategy: str = "round-robin", connections: int = CONNECTIONS,
           keepalive: int | None = None, tuning: Tuning = DEFAULTS,
           worker_processes: int | str = "auto", run_dir: str | Path = RUN_DIR) -> str:
    """The NGINX configuration: ``template`` with each ``{{name}}`` filled in. No I/O.

    ``backends`` are ``Backend`` tuples or ``"HOST:PORT[=WEIGHT]"`` strings;
    ``keepalive`` (idle backend connections kept per worker) defaults to
    ``connections``, the client connections expected at once.
    """
    backends = [parse_backend(b) if isinstance(b, str) else Backend(*b) for b in backends]
    keepalive = connections if keepalive is None else keepalive
    if not backends:
        raise ValueError("at least one backend is needed")
    for b in backends:
        if not (HOST_PATTERN.fullmatch(b.host) and 1 <= b.port <= 65535 and b.weight >= 1):
            raise ValueError(f"not a backend: {b!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be {' or '.join(STRATEGIES)}, not {strategy!r}")
    if not 1 <= port <= 65535 or min(connections, keepalive) < 1:
        raise ValueError("port must be 1..65535, connections and keepalive at least 1")
    if worker_processes != "auto" and not (type(worker_processes) is int
                                           and worker_processes >= 1):
        raise ValueError(f"worker_processes must be 'auto' or at least 1: {worker_processes!r}")
    if re.search(r"[\s;{}'\"$#]", str(run_dir)):
        raise ValueError(f"run_dir may hold no blank and none of ;{{}}'\"$#: {str(run_dir)!r}")
    # Each field of the tuning under its own name; seconds in NGINX's units (10s, 500ms).
    values = {f.name: (_duration if f.type == "float" else str)(getattr(tuning, f.name))
              for f in dataclasses.fields(tuning)}
    # Per worker: both sides of each proxied request, plus the idle pool, with headroom.
    worker_connections = max(1024, 2 * connections + keepalive + 128)
    values.update(
        worker_processes=str(worker_processes), worker_connections=str(worker_connections),
        worker_rlimit_nofile=str(2 * worker_connections), run_dir=str(run_dir).rstrip("/"),
        port=str(port), keepalive=str(keepalive),
        tries=str(len(backends)),  # each backend at most once per request
        balance=("        least_conn;" if strategy == "least-conn"
                 else "        # round-robin: the default, no directive"),
        servers="\n".join(f"        server {b} weight={b.weight} max_fails={tuning.max_fails} "
                          f"fail_timeout={values['fail_timeout']};" for b in backends))
    for status, message in ERROR_MESSAGES.items():
        assert not re.search(r"['\\$]", message), "would need escaping in an NGINX string"
        values[f"message_{status}"] = json.dumps({"message": message})

    def fill(match: re.Match[str]) -> str:
        if match[1] not in values:
            raise ValueError(f"the template has an unknown placeholder {match[0]}")
        return values[match[1]]

    return re.sub(r"\{\{(\w+)\}\}", fill, template)


# -- the I/O shell: find, start, stop NGINX ---------------------------------------------


class NginxError(Exception):
    """Something the user must fix; its text is one line, fit for the terminal."""


class Status(NamedTuple):
    pid: int
    port: int | None  # from the listen line of the rendered config


def find_nginx() -> str:
    for path in (shutil.which("nginx"), *(os.path.join(d, "nginx") for d in NGINX_DIRS)):
        if path and os.access(path, os.X_OK):
            return path
    raise NginxError("nginx is not installed (make services installs it)")


def _run_path(run_dir: str | Path) -> Path:
    return lab_settings.REPO_ROOT / run_dir  # an absolute run_dir stays as it is


def _our_pid(run: Path) -> int | None:
    """The master's pid from our pid file, if that process still runs and is an nginx."""
    try:
        pid = int((run / "nginx.pid").read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if comm == "nginx" and processes.alive(pid) else None  # not a recycled pid


def status(run_dir: str | Path = RUN_DIR) -> Status | None:
    run = _run_path(run_dir)
    if (pid := _our_pid(run)) is None:
        return None
    try:
        found = re.search(r"^\s*listen\s+[\d.]+:(\d+)", (run / "nginx.conf").read_text(), re.M)
    except OSError:
        found = None
    return Status(pid, int(found[1]) if found else None)


def _nginx_says(output: str) -> str:
    """NGINX's own reason in one line: its first [emerg], [alert] or [crit] line, else its last."""
    lines = [line.removeprefix("nginx: ").strip() for line in output.splitlines() if line.strip()]
    return next((line for line in lines if re.search(r"\[(emerg|alert|crit)\]", line)),
                lines[-1] if lines else "no message")


def start(backends: Sequence[Backend | str], *, port: int, strategy: str = "round-robin",
          connections: int = CONNECTIONS, keepalive: int | None = None,
          tuning: Tuning = DEFAULTS, worker_processes: int | str = "auto",
          run_dir: str | Path = RUN_DIR, timeout: float = START_TIMEOUT) -> int:
    """Render, check (nginx -t), start NGINX and wait until it answers; the master's pid."""
    nginx = find_nginx()
    if running := status(run_dir):
        again = "" if str(run_dir) == RUN_DIR else f" --run-dir {run_dir}"
        raise NginxError(f"already running (pid {running.pid}) on {HOST}:{running.port}; "
                         f"stop it first: {PROG} stop{again}")
    text = render(read_template(), backends, port=port, strategy=strategy,
                  connections=connections, keepalive=keepalive, tuning=tuning,
                  worker_processes=worker_processes, run_dir=run_dir)
    with socket.socket() as probe:  # checked here: NGINX retries bind() for 2.5 s, then fails
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as NGINX binds
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise NginxError(f"cannot listen on {HOST}:{port}: {os_reason(exc)}") from None
    run = _run_path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    conf = run / "nginx.conf"
    conf.write_text(text, encoding="utf-8")
    (run / "nginx.pid").unlink(missing_ok=True)  # a stale one would pass for the new master
    command = [nginx, "-p", f"{lab_settings.REPO_ROOT}/", "-e", str(run / "error.log"),
               "-c", str(conf)]
    checked = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    if checked.returncode != 0:
        raise NginxError(f"nginx -t refused {conf}: {_nginx_says(checked.stderr)}")
    # Output to a file, not a pipe: the daemon could hold a pipe open after the launcher exits.
    with open(run / "start.log", "w+", encoding="utf-8") as log:
        started = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        if started.returncode != 0:
            log.seek(0)
            raise NginxError(f"nginx did not start: {_nginx_says(log.read())}")
    # The launcher exits before the daemonized master writes its pid file: wait for both.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (pid := _our_pid(run)) is not None:
            with contextlib.suppress(OSError):
                socket.create_connection((HOST, port), timeout=0.5).close()
                return pid
        time.sleep(0.05)
    stop(run_dir)  # whatever did start: no nginx is left behind
    raise NginxError(f"nginx did not answer on {HOST}:{port} within {timeout:g} s; "
                     f"see {run / 'error.log'}")


def stop(run_dir: str | Path = RUN_DIR, timeout: float = STOP_TIMEOUT) -> int | None:
    """Stop our NGINX: the pid stopped, or None if none ran (so stopping twice is no error).

    SIGQUIT first (graceful: in-flight requests finish), then SIGTERM, then
    SIGKILL to the master's process group, so that no worker is left behind.
    """
    run = _run_path(run_dir)
    pid = _our_pid(run)
    if pid is not None:
        for sig, seconds in ((signal.SIGQUIT, timeout), (signal.SIGTERM, 3.0),
                             (signal.SIGKILL, 3.0)):
            with contextlib.suppress(ProcessLookupError):  # it may exit meanwhile
                # The daemonized master leads a process group of its own, with its workers.
                (os.killpg if sig == signal.SIGKILL else os.kill)(pid, sig)
            if processes.wait_gone(pid, seconds):
                break
        else:
            raise NginxError(f"nginx (pid {pid}) still runs after SIGKILL")
    (run / "nginx.pid").unlink(missing_ok=True)  # NGINX removes it, unless it was killed
    return pid


# -- the command line --------------------------------------------------------------------


def _workers(text: str) -> int | str:
    return "auto" if text == "auto" else int(positive(int)(text))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=(
        "NGINX as the load balancer lab.lb is compared with, configured from "
        "infra/nginx/lb.conf.template with the same settings as lab.lb."))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    start_cmd = commands.add_parser(
        "start", help="render the config, check it with nginx -t, start NGINX",
        description="Render the config into DIR/nginx.conf, check it with nginx -t, start "
                    "NGINX and wait until it answers.")
    render_cmd = commands.add_parser("render", help="print the config that start would use")
    stop_cmd = commands.add_parser("stop", help="stop the NGINX that start started, gracefully")
    status_cmd = commands.add_parser("status", help="whether it runs (exit 0) or not (exit 1)")
    for command in (start_cmd, render_cmd):
        command.add_argument("--port", type=tcp_port, default=None,
                             help="listen on 127.0.0.1:PORT (default: NGINX_PORT, 8081)")
        command.add_argument("--backend", type=backend_argument, action="append", required=True,
                             metavar="HOST:PORT[=WEIGHT]", help="an API instance; repeatable")
        command.add_argument("--strategy", choices=STRATEGIES, default="round-robin",
                             help="how a backend is chosen (default: round-robin, weighted)")
        command.add_argument("--connections", type=positive(int), default=CONNECTIONS,
                             help="client connections expected at once; the keep-alive pool "
                                  f"of each worker is as large (default: {CONNECTIONS})")
        command.add_argument("--workers", type=_workers, default="auto",
                             help="worker processes, or auto: one per core (the default)")
        add_tuning_arguments(command)  # --max-fails, --fail-timeout, ... as lab.lb has them
    for command in (start_cmd, render_cmd, stop_cmd, status_cmd):
        command.add_argument("--run-dir", default=RUN_DIR, metavar="DIR",
                             help="where the config, pid file, logs and temp dirs go, "
                                  f"relative to the repository (default: {RUN_DIR})")
    return parser


def _start_or_render(args: argparse.Namespace) -> None:
    tuning = tuning_from_arguments(args)
    listen = args.port if args.port is not None else lab_settings.load().nginx_port
    options = dict(port=listen, strategy=args.strategy, connections=args.connections,
                   tuning=tuning, worker_processes=args.workers, run_dir=args.run_dir)
    if args.command == "render":
        print(render(read_template(), args.backend, **options), end="")
    else:
        pid = start(args.backend, **options)
        print(f"nginx: answering on {HOST}:{listen} (pid {pid}), {args.strategy} over "
              f"{', '.join(map(str, args.backend))}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command in ("start", "render"):
            _start_or_render(args)
        elif args.command == "stop":
            pid = stop(args.run_dir)
            print("nginx: not running" if pid is None else f"nginx: stopped (pid {pid})")
        elif (running := status(args.run_dir)) is not None:
            print(f"nginx: running (pid {running.pid}) on {HOST}:{running.port}")
        else:
            print("nginx: not running")
            return 1
    except (NginxError, ValueError) as exc:  # ValueError: a bad setting or argument
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, subprocess.SubprocessError) as exc:  # an unwritable run dir, a hung nginx
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        print(f"{PROG}: error: {reason}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
