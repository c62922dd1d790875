"""The asyncpg connection pool, set up on purpose, and what "the database is gone" looks like.

Choices, each against asyncpg's default:

* ``reset``: on every release asyncpg's pool sends ``SELECT
  pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`` -- one more
  round trip for each query a repository makes. The repositories keep no
  session state (no ``SET``, ``LISTEN``, cursors or advisory locks), so the lab
  skips that query; asyncpg still rolls back a transaction left open.
* ``min_size=0``: the pool connects lazily, so the API starts (and answers
  503) while PostgreSQL is down, and connects once it is back.
* ``command_timeout`` and ``acquire_timeout``: a database that hangs makes a
  request fail in seconds (503) rather than wait forever.

``unavailable()`` turns the errors of a database that is down, restarting or
unreachable into ``StoreUnavailable``, which the API answers with 503. The
pool drops a broken connection on release and opens a new one on the next
acquire, so the API recovers by itself when PostgreSQL returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from lab.api.store import StoreUnavailable

MAX_SIZE = 10
COMMAND_TIMEOUT = 5.0  # seconds for one statement
ACQUIRE_TIMEOUT = 5.0  # seconds to wait for a free connection, or to open one

# What a database that is down, restarting or unreachable raises.
DOWN = (OSError, TimeoutError, asyncpg.CannotConnectNowError,
        asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError,
        asyncpg.AdminShutdownError, asyncpg.CrashShutdownError)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset: nothing to undo, since repositories keep no session state."""


async def create_pool(url: str, max_size: int = MAX_SIZE) -> asyncpg.Pool:
    return await asyncpg.create_pool(url, min_size=0, max_size=max_size,
                                     command_timeout=COMMAND_TIMEOUT, reset=_keep_session,
                                     timeout=ACQUIRE_TIMEOUT)


@contextlib.asynccontextmanager
async def unavailable() -> AsyncIterator[None]:
    """Re-raise the errors of a database that is gone as StoreUnavailable."""
    try:
        yield
    except DOWN as exc:
        raise StoreUnavailable(f"PostgreSQL unavailable: {type(exc).__name__}") from exc
