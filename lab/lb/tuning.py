"""The numbers lab.lb and its NGINX twin share, and the backend list both are given.

Challenge 4 compares two load balancers in front of the same API instances;
the comparison means something only if both run with the same settings. So
the settings live here, once, with no I/O: ``lab.lb`` (the hand-built proxy,
``proxy.py``) reads ``Tuning`` for every timeout and limit it applies, and
``lab.lb.nginx`` renders the very same fields into ``infra/nginx/lb.conf.template``
under NGINX's names (given in each field's help). A command line that accepts
``--connect-timeout`` does so for both, from ``dataclasses.fields(Tuning)``.

``add_tuning_arguments`` gives a command line one flag per field
(``--connect-timeout``...), ``tuning_from_arguments`` reads them back, so
both balancers' commands take the same flags, with the same help.

``Backend`` is a backend as the command line names it (``HOST:PORT[=WEIGHT]``),
an immutable value; ``balancer.Backend`` is the live one the proxy keeps its
counters on.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass
from typing import NamedTuple

from lab.cli import positive

STRATEGIES = ("round-robin", "least-conn")  # balancer.BALANCERS; NGINX's default and least_conn
CONNECTIONS = 64  # client connections expected at once; the idle keep-alive pool is as large

ERROR_MESSAGES = {  # {"message": ...} of the answers the balancer makes itself
    413: "Request body too large",
    431: "Request header fields too large",
    502: "Bad gateway: no backend could answer",
    503: "Service unavailable: no backend is available",
    504: "Gateway timeout: the backend did not answer in time",
}


def _setting(default: float, text: str) -> dataclasses.Field:
    return dataclasses.field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class Tuning:
    """The numbers lab.lb and NGINX share, so that both are measured with the same settings.

    Times are in seconds; each field's help says what it bounds (NGINX's name
    in parentheses).
    """

    max_fails: int = _setting(1, "failed tries within fail_timeout that mark a backend down "
                                 "(connection errors and timeouts; 0: never)")
    fail_timeout: float = _setting(10.0, "the window for max_fails, and how long a backend "
                                         "then stays down")
    connect_timeout: float = _setting(1.0, "connecting to a backend (proxy_connect_timeout)")
    header_timeout: float = _setting(10.0, "a client sending its request head "
                                           "(client_header_timeout)")
    read_timeout: float = _setting(30.0, "a backend sending the next bytes of its answer, or "
                                         "reading the request (proxy_read/send_timeout)")
    idle_timeout: float = _setting(60.0, "a client's pause between requests on a keep-alive "
                                         "connection (keepalive_timeout)")
    upstream_idle_timeout: float = _setting(60.0, "an idle pooled backend connection; shorter "
                                                  "than the backends' own 75 s")
    # lab.lb's framer: a line up to 8 KiB, the whole head up to 16 KiB. NGINX counts in
    # buffers a line may not straddle, so its head limit is 8-16 KiB, by how lines fall.
    header_buffer_size: int = _setting(8192, "bytes of one request-head line; longer: 431 "
                                             "(a request line: 414)")
    header_buffers: int = _setting(2, "buffers of header_buffer_size for the whole head; "
                                      "more: 431")
    max_body_size: int = _setting(1024 * 1024, "bytes of a request body; more: 413, and no "
                                               "backend sees it (client_max_body_size)")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            least = 0 if f.name == "max_fails" else 1 if f.type == "int" else 0.001
            if not least <= getattr(self, f.name) < float("inf"):
                raise ValueError(f"{f.name} must be at least {least}: {getattr(self, f.name)!r}")

    @property
    def max_head_size(self) -> int:
        """The whole request head, as lab.lb's framer counts it (at least a line and its CRLFs)."""
        return max(self.header_buffers * self.header_buffer_size, self.header_buffer_size + 4)


DEFAULTS = Tuning()


class Backend(NamedTuple):
    """A backend as the command line gives it; ``str()`` is its ``HOST:PORT``."""

    host: str
    port: int
    weight: int = 1

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


HOST_PATTERN = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")  # no blank, ; or quote


def parse_backend(text: str) -> Backend:
    """``127.0.0.1:8001`` or ``127.0.0.1:8002=2`` (weight 2); ValueError says what is wrong."""
    address, has_weight, weight = text.partition("=")
    host, _, number = address.rpartition(":")
    if not (HOST_PATTERN.fullmatch(host) and number.isdigit() and 1 <= int(number) <= 65535):
        raise ValueError(f"not HOST:PORT[=WEIGHT]: {text!r}")
    if has_weight and not (weight.isdigit() and int(weight) >= 1):
        raise ValueError(f"the weight must be a positive integer: {text!r}")
    return Backend(host, int(number), int(weight) if has_weight else 1)


def backend_argument(text: str) -> Backend:
    """``parse_backend`` as an argparse type: a bad value is a one-line usage error."""
    try:
        return parse_backend(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not an integer 0 or more: {text!r}")
    return int(text)


def add_tuning_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field of ``Tuning``: ``max_fails`` is ``--max-fails N``; default: unset."""
    for f in dataclasses.fields(Tuning):
        kind = _non_negative if f.name == "max_fails" else positive(
            int if f.type == "int" else float)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind,
                            metavar="N" if f.type == "int" else "SECONDS",
                            help=f"{f.metadata['help']} (default: {getattr(DEFAULTS, f.name):g})")


def tuning_from_arguments(args: argparse.Namespace) -> Tuning:
    """``DEFAULTS`` with the fields given on the command line replaced."""
    return dataclasses.replace(DEFAULTS, **{
        f.name: getattr(args, f.name) for f in dataclasses.fields(Tuning)
        if getattr(args, f.name) is not None})
