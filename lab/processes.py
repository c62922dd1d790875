"""Processes the lab starts in the background and stops by their pid.

``python -m lab up`` and the NGINX twin (``lab.lb.nginx``) start servers that
outlive the command that started them, and stop them later from another
command, by the pid they wrote down. Three facts shape this module:

* **A pid can outlive its process.** A process whose parent has gone is
  re-parented to pid 1; where pid 1 does not reap its children (a container's
  minimal init), the dead process stays a zombie, and ``kill(pid, 0)`` still
  succeeds on it. ``alive`` reads the state letter in ``/proc/<pid>/stat``
  instead (Linux only, as the lab is).
* **A pid can be recycled.** Before signalling a pid read from a file,
  ``is_running`` checks that the process there is still the program expected.
* **Stop gently, then firmly.** ``stop`` sends the graceful signal, waits,
  then SIGKILLs the whole process group (the workers of a master, too).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

GRACE = 10.0  # seconds a process gets to finish its work after the graceful signal


def alive(pid: int) -> bool:
    """Runs, and is not a zombie (the state letter after the name in /proc/<pid>/stat)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def is_running(pid: int, program: str) -> bool:
    """``pid`` runs and is ``program`` (a word of its command line): not a recycled pid."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return alive(pid) and any(program.encode() in word for word in words)


def wait_gone(pid: int, seconds: float) -> bool:
    """True once ``pid`` has ended; False if it still runs after ``seconds``."""
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def spawn(argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> int:
    """Start ``argv`` in a session of its own, output to ``log``; its pid.

    A session of its own: Ctrl-C in the terminal that ran ``up`` does not reach it,
    and its process group can be stopped whole.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env=None if env is None else dict(env))
    return process.pid


def stop(pid: int, graceful: signal.Signals = signal.SIGTERM, grace: float = GRACE) -> bool:
    """Stop ``pid``: the graceful signal, ``grace`` seconds, then SIGKILL to its group.

    True if it had to be killed. Stopping a process that has already ended is no error.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, graceful)
    if wait_gone(pid, grace):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # a session leader's pid is its group's id
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)  # in case it was not a group leader after all
    if not wait_gone(pid, 3.0):
        raise RuntimeError(f"pid {pid} still runs after SIGKILL")
    return True
