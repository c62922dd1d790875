"""What every command line of the lab shares.

``OneLineParser``: argparse prints the whole usage block before an error; the
lab's commands print one line instead -- ``python -m lab.cache: error:
argument --port: ... (see --help)`` -- and exit 2, which is easier to read and
to test. Subcommand parsers inherit it (argparse builds them from the parent's
class).

Also the argument types and helpers every server command uses: ``port``,
``positive(int|float)``, ``share`` (0 to 1), ``loop_factory`` (uvloop when installed),
``os_reason`` (the short cause of a socket error, for a one-line message) and
``run_server``, which runs a server's main coroutine and turns the failures a
user can meet into one line and an exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


_A = {int: "an integer", float: "a number"}


def positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {_A[kind]}: {text!r}") from None
        if not 0 < value < float("inf"):  # also refuses nan, which compares false
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return value

    return convert


def share(text: str) -> float:
    """A fraction from 0 to 1 (``--failure-rate 0.3``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (0-65535): {text!r}")
    return int(text)


def loop_factory(choice: str) -> tuple[str, object]:
    """The event loop to run on: its name and a factory for asyncio.Runner."""
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise RuntimeError("uvloop is not installed (pip install uvloop)") from None
        else:
            return "uvloop", uvloop.new_event_loop
    return "asyncio", asyncio.new_event_loop


def os_reason(exc: OSError) -> str:
    """The short cause of a socket error ("Address already in use"), without the loop's prose."""
    if isinstance(exc, socket.gaierror) or not exc.errno or exc.errno < 0:
        return exc.strerror or str(exc)
    return os.strerror(exc.errno)


def run_server(prog: str, where: str, loop_choice: str,
               serve: Callable[[str], Awaitable[None]]) -> int:
    """Run ``serve(loop_name)`` on the chosen event loop; the exit status for ``main``.

    A port in use or an address that cannot be bound (``where`` names it) and a
    missing uvloop are one line on stderr and exit 1; Ctrl-C before the
    server's own signal handlers are in place is a clean exit 0.
    """
    try:
        loop_name, factory = loop_factory(loop_choice)
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve(loop_name))
    except OSError as exc:  # port in use, address not available, unknown host
        print(f"{prog}: error: cannot listen on {where}: {os_reason(exc)}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
