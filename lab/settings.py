"""The lab's settings: the one place that reads the environment.

Each setting is looked up, in order, in

1. the process environment (``export CACHE_PORT=7000`` for one shell),
2. ``.env`` (for one checkout; git ignores it),
3. ``.env.example``, the committed file that lists every setting with a
   default that works with ``infra/services.sh``,

so a fresh clone runs with no configuration at all. Each file is looked for in
the current directory, then in the repository root; the first one found is
read whole (files are never merged). ``infra/services.sh`` reads the same
names in the same order, so the roles it creates match the URLs used here.

Every value is checked once, in ``load()``: a typo fails at start-up with the
variable's name (``ValueError: CACHE_PORT must be ...``) instead of deep inside
a server. There are no defaults in this module, and so no credentials: the
defaults live in ``.env.example``, and ``repr()`` hides URL passwords.

The ``.env`` format is deliberately small: ``KEY=VALUE`` lines, an optional
``export``, optional matching quotes around the value, whole-line ``#``
comments. There are no inline comments and no ``${VAR}`` expansion.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def parse_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines; a line that is neither that nor a comment is an error."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"{path}:{number}: expected KEY=VALUE")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value  # a later line wins, as when a shell sources the file
    return values


def _find(name: str, dirs: Iterable[Path]) -> Path | None:
    return next((d / name for d in dirs if (d / name).is_file()), None)


# -- one parser per kind of value: (variable name, raw text) -> typed value ----------


def _port(name: str, value: str) -> int:
    # A regex, not int(): int() also takes "+80", " 80", "8_0" and non-ASCII digits.
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 1 <= int(value) <= 65535:
        raise ValueError(f"{name} must be a TCP port number 1..65535, got {value!r}")
    return int(value)


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(name: str, value: str) -> str:
    level = value.upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"{name} must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}")
    return level


# An AMQP short string, the names as an operator types them: no spaces, and not "amq.",
# which RabbitMQ reserves for its own exchanges (declaring one is ACCESS_REFUSED).
_AMQP_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,255}")


def _amqp_name(name: str, value: str) -> str:
    if not _AMQP_NAME.fullmatch(value) or value.startswith("amq."):
        raise ValueError(f"{name} must be an exchange or queue name of letters, digits and "
                         f"'_.:-' (1..255, not starting with 'amq.'), got {value!r}")
    return value


# Seconds with at most millisecond precision: RabbitMQ takes x-message-ttl in whole ms, and
# six digits (11.5 days) keep it far below the broker's 2**32 ms ceiling.
_DELAY = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,3})?")


def _delays(name: str, value: str) -> tuple[float, ...]:
    wrong = (f"{name} must be growing delays in seconds, comma-separated, each above 0 "
             f"with at most 3 decimals, like 1,5,25; got {value!r}")
    parts = [part.strip() for part in value.split(",")]
    if not all(_DELAY.fullmatch(part) for part in parts):
        raise ValueError(wrong)
    delays = tuple(float(part) for part in parts)
    # Strictly growing: a backoff, and one queue name per delay (two equal delays would
    # name the same retry queue).
    if delays[0] <= 0 or any(a >= b for a, b in pairwise(delays)):
        raise ValueError(wrong)
    return delays


def _url(schemes: tuple[str, ...], example: str, *, needs_path: bool = False) -> Callable:
    def parse(name: str, value: str) -> str:
        # The message never repeats the value: it may hold a password.
        wrong = f"{name} must be a URL like {example}"
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- reading it raises ValueError for a bad port
        except ValueError:
            raise ValueError(wrong) from None
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(wrong)
        if needs_path and not parts.path.strip("/"):
            raise ValueError(f"{name} must name a database, like {example}")
        return value

    return parse


_postgres = _url(("postgresql", "postgres"), "postgresql://USER:PASSWORD@127.0.0.1:5432/DB",
                 needs_path=True)
_redis = _url(("redis", "rediss"), "redis://127.0.0.1:6379/0")
_amqp = _url(("amqp", "amqps"), "amqp://USER:PASSWORD@127.0.0.1:5672/")


def _setting(parse: Callable) -> dataclasses.Field:
    return field(metadata={"parse": parse})


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``, for logs and reprs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{hostport}").geturl()


@dataclass(frozen=True, repr=False)
class Settings:
    """Every setting of the lab; the field ``cache_port`` is read from ``CACHE_PORT``."""

    database_url: str = _setting(_postgres)  # lab_app: may only read and write rows
    database_owner_url: str = _setting(_postgres)  # lab_owner: owns the schema, migrates
    test_database_url: str = _setting(_postgres)  # the same two roles on lab_test
    test_database_owner_url: str = _setting(_postgres)
    redis_url: str = _setting(_redis)
    rabbitmq_url: str = _setting(_amqp)
    # Challenge 5's RabbitMQ topology (lab/queue/topology.py): a topic exchange for task
    # events, the work queue bound to it, one retry queue per delay, the dead-letter queue.
    queue_exchange: str = _setting(_amqp_name)
    queue_work: str = _setting(_amqp_name)
    queue_retry_delays: tuple[float, ...] = _setting(_delays)  # seconds, one per retry
    queue_dead_letter: str = _setting(_amqp_name)
    cache_port: int = _setting(_port)  # python -m lab.cache serve
    api_port: int = _setting(_port)  # python -m lab.api (the first instance)
    lb_port: int = _setting(_port)  # python -m lab.lb
    nginx_port: int = _setting(_port)  # NGINX, the load balancer lab.lb is compared with
    log_level: str = _setting(_log_level)

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            shown.append(f"{f.name}={redact(value) if isinstance(value, str) else value!r}")
        return f"Settings({', '.join(shown)})"


def load(environ: Mapping[str, str] | None = None,
         dirs: Iterable[Path] | None = None) -> Settings:
    """Read every setting (see the module docstring for the order); ValueError names the culprit.

    ``environ`` defaults to ``os.environ`` and ``dirs`` to the current directory,
    then the repository root; tests pass their own.
    """
    environ = os.environ if environ is None else environ
    dirs = [Path.cwd(), REPO_ROOT] if dirs is None else list(dirs)
    layers = [environ]
    for name in (".env", ".env.example"):
        path = _find(name, dirs)
        if path is not None:
            layers.append(parse_env_file(path))

    values = {}
    for f in dataclasses.fields(Settings):
        var = f.name.upper()
        raw = next((layer[var] for layer in layers if var in layer), None)
        if raw is None:
            raise ValueError(f"{var} is not set (in the environment, .env or .env.example)")
        values[f.name] = f.metadata["parse"](var, raw.strip())
    return Settings(**values)
