"""What each Redis command does to a ``TTLCache``, and the reply bytes it gives.

Pure: a handler takes the cache and the command's words (``[b"SET", b"k",
b"v"]``) and returns the encoded reply; no sockets, no event loop, so a test
runs every command against a ``TTLCache`` with a fake clock. ``COMMANDS`` is the
table, as data: name -> (handler, arity). Arity follows Redis's convention: N
means exactly N words including the name, -N means at least N. ``execute``
looks a command up, checks its arity and runs it; errors are replies, never
exceptions -- the one exception is ``ClientQuit``, raised by QUIT so the server
knows to close after writing the reply.

The error texts are Redis 7.0's, word for word (``ERR wrong number of
arguments for 'get' command``, ``ERR unknown command 'foo', with args
beginning with: 'a' 'b' ``), so clients and tests that match on them work.

Invariants: keys and values are ``bytes``; a handler never raises for any
input a client can send (a test feeds every error path); the cache's own
counters (hits, misses, evictions, expirations) are what INFO reports.

Deliberately missing, compared with Redis: every value is a string (no lists,
hashes, sets, so no WRONGTYPE); one database (``SELECT 0`` only); SET has no
GET/KEEPTTL/EXAT/PXAT; no AUTH, no MULTI, no pub/sub. The server speaks
RESP2 only: ``HELLO 3`` is refused with ``NOPROTO``, as Redis itself refuses
a version it lacks, and redis-py (RESP3 by default since 8.2) falls back to
RESP2. INFO has
only the ``# Stats`` and ``# Keyspace`` sections; its key scan is O(n), fine
for an admin command. CONFIG GET knows four parameters, all true of this
server (no persistence, LRU eviction, one database), which is what
redis-benchmark asks for before it starts.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import NamedTuple

from lab.cache.replies import (
    EMPTY_ARRAY,
    MINUS_ONE,
    MINUS_TWO,
    NULL_BULK,
    OK,
    ONE,
    PONG,
    ZERO,
    array,
    bulk,
    error,
    integer,
    simple_string,
)
from lab.cache.ttl import TTLCache

LLONG_MAX = 2**63 - 1  # Redis counts in C's long long
LLONG_MIN = -(2**63)

ERR_SYNTAX = error(b"ERR syntax error")
ERR_NOT_INTEGER = error(b"ERR value is not an integer or out of range")
ERR_OVERFLOW = error(b"ERR increment or decrement would overflow")


class ClientQuit(Exception):
    """Raised by QUIT: write ``reply``, then close the connection."""

    def __init__(self, reply: bytes) -> None:
        super().__init__("client asked to quit")
        self.reply = reply


Handler = Callable[[TTLCache, list[bytes]], bytes]


class Command(NamedTuple):
    handler: Handler
    arity: int  # N: exactly N words, name included; -N: at least N


# -- helpers -----------------------------------------------------------------------

_INTEGER = re.compile(rb"-?[1-9][0-9]*|0")


def parse_int(value: bytes) -> int | None:
    """``value`` as a signed 64-bit integer, as strict as Redis's ``string2ll``; else None.

    No '+', no spaces, no leading zeros, no "-0": "007" is a string, not 7.
    """
    if len(value) < 21 and _INTEGER.fullmatch(value):
        number = int(value)
        if LLONG_MIN <= number <= LLONG_MAX:
            return number
    return None


def _c_string(value: bytes, limit: int) -> bytes:
    """What C's ``%.<limit>s`` prints of ``value``: up to ``limit`` bytes or a NUL."""
    return value[:limit].split(b"\0", 1)[0]


def wrong_arity(name: bytes) -> bytes:
    return error(b"ERR wrong number of arguments for '%b' command" % name)


def unknown_command(args: list[bytes]) -> bytes:
    shown = b""
    for arg in args[1:]:  # Redis shows the arguments until 128 bytes are shown
        if len(shown) >= 128:
            break
        shown += b"'%b' " % _c_string(arg, 128 - len(shown))
    return error(
        b"ERR unknown command '%b', with args beginning with: %b" % (_c_string(args[0], 128), shown)
    )


def _invalid_expire_time(name: bytes) -> bytes:
    return error(b"ERR invalid expire time in '%b' command" % name)


def _now_ms() -> int:
    # Only to refuse a TTL whose absolute time would overflow 64 bits, as Redis does
    # (its expiry times are Unix milliseconds); entries themselves use the cache's clock.
    return int(time.time() * 1000)


# -- connection and server -----------------------------------------------------------


def ping(cache: TTLCache, args: list[bytes]) -> bytes:
    if len(args) == 1:
        return PONG
    if len(args) == 2:
        return bulk(args[1])
    return wrong_arity(b"ping")


def echo(cache: TTLCache, args: list[bytes]) -> bytes:
    return bulk(args[1])


def quit_(cache: TTLCache, args: list[bytes]) -> bytes:
    raise ClientQuit(OK)


def select(cache: TTLCache, args: list[bytes]) -> bytes:
    index = parse_int(args[1])
    if index is None:
        return ERR_NOT_INTEGER
    return OK if index == 0 else error(b"ERR DB index is out of range")


def hello(cache: TTLCache, args: list[bytes]) -> bytes:
    if len(args) >= 2:
        version = parse_int(args[1])
        if version is None:
            return error(b"ERR Protocol version is not an integer or out of range")
        if version != 2:  # RESP3 is not spoken here: a client that asks falls back to RESP2
            return error(b"NOPROTO unsupported protocol version")
    if len(args) > 2:  # AUTH and SETNAME: there are no users and no client names here
        return error(b"ERR Syntax error in HELLO option '%b'" % _c_string(args[2], 128))
    return _HELLO_REPLY


_HELLO_REPLY = array(  # RESP2 has no map type: a map goes as a flat array of pairs
    [
        *(bulk(b"server"), bulk(b"lab.cache")),
        *(bulk(b"version"), bulk(b"7.0.0")),  # the Redis whose replies this server mimics
        *(bulk(b"proto"), integer(2)),
        *(bulk(b"mode"), bulk(b"standalone")),
        *(bulk(b"role"), bulk(b"master")),
        *(bulk(b"modules"), EMPTY_ARRAY),
    ]
)


def _time_to_live(cache: TTLCache, key: bytes) -> float:
    """Seconds left for a key that expires; 0 if it never does or is gone."""
    try:
        remaining = cache.time_to_live(key)
    except KeyError:
        return 0  # it expired while INFO was counting
    return 0 if remaining == math.inf else remaining


def dbsize(cache: TTLCache, args: list[bytes]) -> bytes:
    return integer(len(cache))


def flushall(cache: TTLCache, args: list[bytes]) -> bytes:
    if len(args) > 2 or (len(args) == 2 and args[1].lower() not in (b"sync", b"async")):
        return ERR_SYNTAX
    cache.clear()
    return OK


def info(cache: TTLCache, args: list[bytes]) -> bytes:
    wanted = {arg.lower() for arg in args[1:]} or {b"default"}
    every = bool(wanted & {b"all", b"default", b"everything"})
    sections = []
    if every or b"stats" in wanted:
        sections.append(
            b"# Stats\r\n"
            b"keyspace_hits:%d\r\nkeyspace_misses:%d\r\n"
            b"evicted_keys:%d\r\nexpired_keys:%d\r\n"
            % (cache.hits, cache.misses, cache.evictions, cache.expirations)
        )
    if every or b"keyspace" in wanted:
        section = b"# Keyspace\r\n"
        if len(cache):
            ttls = [_time_to_live(cache, key) for key in cache]  # O(n): fine for INFO
            finite = [ttl for ttl in ttls if ttl]
            avg_ms = round(sum(finite) * 1000 / len(finite)) if finite else 0
            section += b"db0:keys=%d,expires=%d,avg_ttl=%d\r\n" % (len(cache), len(finite), avg_ms)
        sections.append(section)
    return bulk(b"\r\n".join(sections))  # Redis puts an empty line between sections


# -- strings ---------------------------------------------------------------------


def get(cache: TTLCache, args: list[bytes]) -> bytes:
    value = cache.get(args[1])
    if value is None:
        return NULL_BULK
    return b"$%d\r\n%b\r\n" % (len(value), value)  # bulk(), inlined: the hottest reply


def set_(cache: TTLCache, args: list[bytes]) -> bytes:
    if len(args) == 3:  # the common case: SET key value, no options
        cache[args[1]] = args[2]
        return OK
    # Options, parsed as Redis's parseExtendedStringArgumentsOrReply does: a repeated
    # option is allowed, a conflicting one (NX with XX, EX with PX) is a syntax error.
    nx = xx = False
    unit_ms = 0  # 1000 after EX, 1 after PX
    expire = b""
    i = 3
    while i < len(args):
        option = args[i].lower()
        has_next = i + 1 < len(args)
        if option == b"nx" and not xx:
            nx = True
        elif option == b"xx" and not nx:
            xx = True
        elif option == b"ex" and unit_ms != 1 and has_next:
            unit_ms, expire = 1000, args[i + 1]
            i += 1
        elif option == b"px" and unit_ms != 1000 and has_next:
            unit_ms, expire = 1, args[i + 1]
            i += 1
        else:
            return ERR_SYNTAX
        i += 1
    ttl = None
    if unit_ms:
        amount = parse_int(expire)
        if amount is None:
            return ERR_NOT_INTEGER
        if amount <= 0 or amount > LLONG_MAX // unit_ms:
            return _invalid_expire_time(b"set")
        milliseconds = amount * unit_ms
        if milliseconds > LLONG_MAX - _now_ms():
            return _invalid_expire_time(b"set")  # the absolute time would overflow
        ttl = milliseconds / 1000
    key = args[1]
    if nx or xx:
        found = key in cache
        if (nx and found) or (xx and not found):
            return NULL_BULK  # condition not met: nil, nothing written
    if ttl is None:
        cache[key] = args[2]  # a plain SET also removes an earlier TTL
    else:
        cache.set(key, args[2], ttl=ttl)
    return OK


def mget(cache: TTLCache, args: list[bytes]) -> bytes:
    return array(bulk(cache.get(key)) for key in args[1:])


def mset(cache: TTLCache, args: list[bytes]) -> bytes:
    if len(args) % 2 == 0:  # a key without its value
        return wrong_arity(b"mset")
    for i in range(1, len(args), 2):
        cache[args[i]] = args[i + 1]
    return OK


def _incr_by(cache: TTLCache, key: bytes, delta: int) -> bytes:
    value = cache.peek(key)  # no hit/miss counted: INCR is a write
    ttl = None
    current = 0
    if value is not None:
        current = parse_int(value)
        if current is None:
            return ERR_NOT_INTEGER
        try:
            ttl = cache.time_to_live(key)  # INCR keeps the key's TTL, as Redis does
        except KeyError:
            ttl = None  # it expired this very instant: count from its old value anyway
    if not LLONG_MIN <= current + delta <= LLONG_MAX:
        return ERR_OVERFLOW
    current += delta
    cache.set(key, b"%d" % current, ttl=ttl)  # ttl inf = no expiry; None = the default
    return integer(current)


def incr(cache: TTLCache, args: list[bytes]) -> bytes:
    return _incr_by(cache, args[1], 1)


def decr(cache: TTLCache, args: list[bytes]) -> bytes:
    return _incr_by(cache, args[1], -1)


def incrby(cache: TTLCache, args: list[bytes]) -> bytes:
    delta = parse_int(args[2])
    return ERR_NOT_INTEGER if delta is None else _incr_by(cache, args[1], delta)


def decrby(cache: TTLCache, args: list[bytes]) -> bytes:
    delta = parse_int(args[2])
    if delta is None:
        return ERR_NOT_INTEGER
    if delta == LLONG_MIN:  # -delta would not fit in 64 bits
        return error(b"ERR decrement would overflow")
    return _incr_by(cache, args[1], -delta)


# -- keys and expiry -------------------------------------------------------------------


def delete(cache: TTLCache, args: list[bytes]) -> bytes:
    return integer(sum(cache.invalidate(key) for key in args[1:]))  # DEL a a counts a once


def exists(cache: TTLCache, args: list[bytes]) -> bytes:
    return integer(sum(key in cache for key in args[1:]))  # EXISTS a a counts a twice


def _expire(cache: TTLCache, args: list[bytes], unit_ms: int, name: bytes) -> bytes:
    """EXPIRE and PEXPIRE key amount [NX|XX|GT|LT], in Redis 7.0's order of checks."""
    options = set()
    for option in args[3:]:
        if option.lower() not in (b"nx", b"xx", b"gt", b"lt"):
            return error(b"ERR Unsupported option %b" % _c_string(option, len(option)))
        options.add(option.lower())
    if b"nx" in options and len(options) > 1:
        return error(b"ERR NX and XX, GT or LT options at the same time are not compatible")
    if b"gt" in options and b"lt" in options:
        return error(b"ERR GT and LT options at the same time are not compatible")
    amount = parse_int(args[2])
    if amount is None:
        return ERR_NOT_INTEGER
    if unit_ms == 1000 and abs(amount) > LLONG_MAX // 1000:
        return _invalid_expire_time(name)  # the conversion to ms would overflow
    milliseconds = amount * unit_ms
    if milliseconds > LLONG_MAX - _now_ms():
        return _invalid_expire_time(name)
    key = args[1]
    try:
        remaining = cache.time_to_live(key)
    except KeyError:
        return ZERO
    # A key without expiry counts as an infinite TTL for GT and LT, as in Redis.
    current_ms = remaining if remaining == math.inf else round(remaining * 1000)
    if (
        (b"nx" in options and remaining != math.inf)
        or (b"xx" in options and remaining == math.inf)
        or (b"gt" in options and milliseconds <= current_ms)
        or (b"lt" in options and milliseconds >= current_ms)
    ):
        return ZERO
    if milliseconds <= 0:  # already in the past: the key goes now, as Redis does
        cache.invalidate(key)
    else:
        cache.touch(key, milliseconds / 1000)
    return ONE


def expire(cache: TTLCache, args: list[bytes]) -> bytes:
    return _expire(cache, args, 1000, b"expire")


def pexpire(cache: TTLCache, args: list[bytes]) -> bytes:
    return _expire(cache, args, 1, b"pexpire")


def _pttl(cache: TTLCache, key: bytes) -> int | None:
    """Milliseconds left, -1 if no expiry, None if the key is missing."""
    try:
        remaining = cache.time_to_live(key)
    except KeyError:
        return None
    if remaining == math.inf:
        return -1
    return max(0, round(remaining * 1000))  # Redis keeps whole milliseconds


def ttl(cache: TTLCache, args: list[bytes]) -> bytes:
    ms = _pttl(cache, args[1])
    if ms is None:
        return MINUS_TWO
    return MINUS_ONE if ms == -1 else integer((ms + 500) // 1000)  # rounded, as Redis does


def pttl(cache: TTLCache, args: list[bytes]) -> bytes:
    ms = _pttl(cache, args[1])
    return MINUS_TWO if ms is None else integer(ms)


# -- container commands: CONFIG GET, CLIENT SETINFO, COMMAND DOCS --------------------------

CONFIG = {  # what CONFIG GET reports: each is true of this server
    b"save": b"",  # no snapshots
    b"appendonly": b"no",  # no append-only file
    b"maxmemory-policy": b"allkeys-lru",  # a full cache forgets its least recently used key
    b"databases": b"1",  # only db 0
}


def config_get(cache: TTLCache, args: list[bytes]) -> bytes:
    patterns = [arg.lower().decode("latin-1") for arg in args[2:]]
    found = [
        reply
        for name, value in CONFIG.items()
        if any(fnmatchcase(name.decode("latin-1"), pattern) for pattern in patterns)
        for reply in (bulk(name), bulk(value))
    ]
    return array(found)


def _ok(cache: TTLCache, args: list[bytes]) -> bytes:
    return OK


def _empty_array(cache: TTLCache, args: list[bytes]) -> bytes:
    return EMPTY_ARRAY


def container(
    name: bytes, subcommands: dict[bytes, Command], bare: Handler | None = None
) -> Handler:
    """A handler that dispatches ``NAME SUBCOMMAND ...`` to its own small table, plus HELP."""
    help_reply = array(
        [simple_string(b"%b <subcommand> [<arg> ...]. Subcommands are:" % name.upper())]
        + [simple_string(sub.upper()) for sub in [*subcommands, b"help"]]
    )
    table = {**subcommands, b"help": Command(lambda cache, args: help_reply, 2)}

    def dispatch(cache: TTLCache, args: list[bytes]) -> bytes:
        if len(args) == 1:
            assert bare is not None, "the container's arity lets a bare call through"
            return bare(cache, args)
        sub = args[1].lower()
        command = table.get(sub)
        if command is None:
            return error(
                b"ERR unknown subcommand '%b'. Try %b HELP."
                % (_c_string(args[1], 128), args[0].upper())
            )
        handler, arity = command
        if len(args) != arity and (arity > 0 or len(args) < -arity):
            return wrong_arity(name + b"|" + sub)
        return handler(cache, args)

    return dispatch


# -- the table -------------------------------------------------------------------------

COMMANDS: dict[bytes, Command] = {
    b"ping": Command(ping, -1),
    b"echo": Command(echo, 2),
    b"quit": Command(quit_, -1),
    b"select": Command(select, 2),
    b"hello": Command(hello, -1),
    b"get": Command(get, 2),
    b"set": Command(set_, -3),
    b"mget": Command(mget, -2),
    b"mset": Command(mset, -3),
    b"incr": Command(incr, 2),
    b"decr": Command(decr, 2),
    b"incrby": Command(incrby, 3),
    b"decrby": Command(decrby, 3),
    b"del": Command(delete, -2),
    b"exists": Command(exists, -2),
    b"expire": Command(expire, -3),
    b"pexpire": Command(pexpire, -3),
    b"ttl": Command(ttl, 2),
    b"pttl": Command(pttl, 2),
    b"dbsize": Command(dbsize, 1),
    b"flushall": Command(flushall, -1),
    b"flushdb": Command(flushall, -1),  # one database: FLUSHDB and FLUSHALL are the same
    b"info": Command(info, -1),
    b"config": Command(container(b"config", {b"get": Command(config_get, -3)}), -2),
    b"client": Command(
        container(
            b"client",
            {b"setinfo": Command(_ok, 4), b"setname": Command(_ok, 3)},  # redis-py on connect
        ),
        -2,
    ),
    b"command": Command(  # redis-cli 7 asks COMMAND DOCS for its hints; it copes with none
        container(
            b"command",
            {b"docs": Command(_empty_array, -2)},
            bare=_empty_array,
        ),
        -1,
    ),
}

# Clients send names in capitals ("GET") or in lower case: both hit the dict at once.
_LOOKUP = {**COMMANDS, **{name.upper(): command for name, command in COMMANDS.items()}}


def execute_all(cache: TTLCache, commands: list[list[bytes]]) -> tuple[bytes, bool]:
    """Run the commands of one read; their replies joined, and whether QUIT came.

    ``execute`` inlined in a loop: one call per read instead of one per command,
    which is what a pipelined client pays for. Commands after a QUIT are not run.
    """
    lookup = _LOOKUP
    replies = []
    append = replies.append
    try:
        for args in commands:
            command = lookup.get(args[0]) or lookup.get(args[0].lower())
            if command is None:
                append(unknown_command(args))
                continue
            handler, arity = command
            if len(args) != arity and (arity > 0 or len(args) < -arity):
                append(wrong_arity(args[0].lower()))
                continue
            append(handler(cache, args))
    except ClientQuit as quit:
        append(quit.reply)
        return b"".join(replies), True
    return b"".join(replies), False  # joining a single reply returns it, uncopied


def execute(cache: TTLCache, args: list[bytes]) -> bytes:
    """Run one command (its words, name first) against ``cache``; its reply bytes."""
    command = _LOOKUP.get(args[0])
    if command is None:
        command = _LOOKUP.get(args[0].lower())  # mixed case, e.g. "Get"
        if command is None:
            return unknown_command(args)
    handler, arity = command
    if len(args) != arity and (arity > 0 or len(args) < -arity):
        return wrong_arity(args[0].lower())
    return handler(cache, args)
