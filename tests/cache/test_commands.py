"""The command table against a TTLCache with a fake clock: every reply and error, no sleeps."""

import pytest

from lab.cache.commands import (
    COMMANDS,
    LLONG_MAX,
    LLONG_MIN,
    ClientQuit,
    execute,
    execute_all,
    parse_int,
)
from lab.cache.ttl import TTLCache
from tests.cache.clock import FakeClock

SYNTAX = b"-ERR syntax error\r\n"
NOT_INTEGER = b"-ERR value is not an integer or out of range\r\n"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def cache(clock):
    return TTLCache(100, ttl=None, clock=clock)


@pytest.fixture
def run(cache):
    """run("SET", "k", "v") -> the reply bytes."""

    def run(*words: str | bytes) -> bytes:
        args = [w if isinstance(w, bytes) else w.encode() for w in words]
        return execute(cache, args)

    return run


def wrong_arity(name: str) -> bytes:
    return b"-ERR wrong number of arguments for '%s' command\r\n" % name.encode()


# -- the table -----------------------------------------------------------------------


def test_the_table_is_data_names_are_lowercase_and_arities_nonzero():
    for name, command in COMMANDS.items():
        assert name == name.lower()
        assert callable(command.handler)
        assert command.arity != 0


@pytest.mark.parametrize("name", ["get", "GET", "Get", "gEt"])
def test_names_are_case_insensitive(run, name):
    run("SET", "k", "v")
    assert run(name, "k") == b"$1\r\nv\r\n"


@pytest.mark.parametrize(
    "words",
    [["GET"], ["GET", "a", "b"], ["SET", "k"], ["DEL"], ["EXISTS"], ["TTL"], ["INCR"],
     ["MGET"], ["MSET", "k"], ["ECHO"], ["DBSIZE", "x"], ["EXPIRE", "k"], ["SELECT"],
     ["INCRBY", "k"], ["PTTL", "a", "b"]],
)  # fmt: skip
def test_wrong_arity_uses_redis_text_with_the_lowercase_name(run, words):
    assert run(*words) == wrong_arity(words[0].lower())


def test_unknown_command_lists_its_first_arguments_like_redis_7(run):
    assert run("foo", "a", "b") == (
        b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"
    )
    assert run("FOO") == b"-ERR unknown command 'FOO', with args beginning with: \r\n"


def test_unknown_command_shows_about_128_bytes_of_arguments(run):
    reply = run("nope", "x" * 100, "y" * 100, "z")
    assert reply == (
        b"-ERR unknown command 'nope', with args beginning with: '"
        + b"x" * 100
        + b"' '"
        + b"y" * 25  # 128 minus the 103 bytes already shown
        + b"' \r\n"
    )


def test_unknown_command_cannot_break_the_framing(run):
    assert run(b"a\r\nb", b"\r\n") == (
        b"-ERR unknown command 'a  b', with args beginning with: '  ' \r\n"
    )


# -- PING, ECHO, QUIT, SELECT, HELLO ------------------------------------------------------


def test_ping_and_echo(run):
    assert run("PING") == b"+PONG\r\n"
    assert run("PING", "hi") == b"$2\r\nhi\r\n"
    assert run("PING", "a", "b") == wrong_arity("ping")
    assert run("ECHO", b"a\r\nb") == b"$4\r\na\r\nb\r\n"


def test_quit_raises_so_the_server_closes_after_the_reply(run):
    with pytest.raises(ClientQuit) as quit:
        run("QUIT")
    assert quit.value.reply == b"+OK\r\n"


def test_execute_all_joins_replies_and_stops_at_quit(cache):
    replies, quit = execute_all(cache, [[b"PING"], [b"SET", b"k", b"v"], [b"GET", b"k"]])
    assert (replies, quit) == (b"+PONG\r\n+OK\r\n$1\r\nv\r\n", False)
    replies, quit = execute_all(cache, [[b"PING"], [b"QUIT"], [b"SET", b"k", b"after quit"]])
    assert (replies, quit) == (b"+PONG\r\n+OK\r\n", True)
    assert cache.get(b"k") == b"v"  # the command after QUIT did not run


def test_execute_all_reports_errors_in_place(cache):
    replies, _ = execute_all(cache, [[b"nope"], [b"GET"], [b"PING"]])
    assert replies == (
        b"-ERR unknown command 'nope', with args beginning with: \r\n"
        + wrong_arity("get")
        + b"+PONG\r\n"
    )


def test_select(run):
    assert run("SELECT", "0") == b"+OK\r\n"
    assert run("SELECT", "1") == b"-ERR DB index is out of range\r\n"
    assert run("SELECT", "x") == NOT_INTEGER


def test_hello_answers_resp2_and_refuses_resp3(run):
    for words in (["HELLO"], ["HELLO", "2"]):
        reply = run(*words)
        assert reply.startswith(b"*12\r\n$6\r\nserver\r\n")
        assert b"$5\r\nproto\r\n:2\r\n" in reply
    # Refused, as a server without RESP3 must: the client then stays on RESP2.
    assert run("HELLO", "3") == b"-NOPROTO unsupported protocol version\r\n"
    assert run("HELLO", "4") == b"-NOPROTO unsupported protocol version\r\n"
    assert run("HELLO", "x") == b"-ERR Protocol version is not an integer or out of range\r\n"
    assert run("HELLO", "2", "AUTH", "u", "p") == b"-ERR Syntax error in HELLO option 'AUTH'\r\n"


# -- GET, SET ------------------------------------------------------------------------------


def test_get_and_set(run):
    assert run("GET", "k") == b"$-1\r\n"
    assert run("SET", "k", b"") == b"+OK\r\n"
    assert run("GET", "k") == b"$0\r\n\r\n"
    assert run("SET", "k", b"\x00\r\n\xff") == b"+OK\r\n"
    assert run("GET", "k") == b"$4\r\n\x00\r\n\xff\r\n"


def test_set_ex_expires_with_the_clock(run, clock):
    assert run("SET", "k", "v", "EX", "10") == b"+OK\r\n"
    clock.tick(9.999)
    assert run("GET", "k") == b"$1\r\nv\r\n"
    clock.tick(0.001)
    assert run("GET", "k") == b"$-1\r\n"


def test_set_px_expires_with_the_clock(run, clock):
    assert run("SET", "k", "v", "px", "1500") == b"+OK\r\n"
    clock.tick(1.4)
    assert run("PTTL", "k") == b":100\r\n"
    clock.tick(0.1)
    assert run("GET", "k") == b"$-1\r\n"


def test_a_plain_set_removes_the_ttl(run):
    run("SET", "k", "v", "EX", "10")
    run("SET", "k", "w")
    assert run("TTL", "k") == b":-1\r\n"


def test_set_nx_and_xx(run):
    assert run("SET", "k", "1", "XX") == b"$-1\r\n"
    assert run("GET", "k") == b"$-1\r\n"
    assert run("SET", "k", "1", "NX") == b"+OK\r\n"
    assert run("SET", "k", "2", "NX") == b"$-1\r\n"
    assert run("GET", "k") == b"$1\r\n1\r\n"
    assert run("SET", "k", "3", "xx", "ex", "5") == b"+OK\r\n"
    assert run("GET", "k") == b"$1\r\n3\r\n"
    assert run("TTL", "k") == b":5\r\n"


def test_set_nx_sees_an_expired_key_as_missing(run, clock):
    run("SET", "k", "old", "EX", "1")
    clock.tick(1)
    assert run("SET", "k", "new", "NX") == b"+OK\r\n"


@pytest.mark.parametrize(
    "options",
    [["NX", "XX"], ["XX", "NX"], ["EX", "10", "PX", "10"], ["PX", "10", "EX", "10"], ["EX"],
     ["PX"], ["BOGUS"], ["NX", "EX"], ["KEEPTTL"], ["GET"]],
)  # fmt: skip
def test_set_syntax_errors(run, options):
    assert run("SET", "k", "v", *options) == SYNTAX
    assert run("GET", "k") == b"$-1\r\n"


def test_set_repeated_options_are_allowed_like_redis(run):
    assert run("SET", "k", "v", "NX", "NX") == b"+OK\r\n"
    assert run("SET", "k", "v", "EX", "10", "EX", "20") == b"+OK\r\n"
    assert run("TTL", "k") == b":20\r\n"


@pytest.mark.parametrize(
    "amount", ["abc", "1.5", "+5", " 5", "05", "-0", "", "9223372036854775808"]
)
def test_set_expire_must_be_an_integer(run, amount):
    assert run("SET", "k", "v", "EX", amount) == NOT_INTEGER


@pytest.mark.parametrize(
    ("unit", "amount"),
    [("EX", "0"), ("EX", "-1"), ("PX", "0"), ("PX", "-5"), ("EX", str(LLONG_MAX // 1000 + 1)),
     ("PX", str(LLONG_MAX))],
)  # fmt: skip
def test_set_invalid_expire_time(run, unit, amount):
    assert run("SET", "k", "v", unit, amount) == b"-ERR invalid expire time in 'set' command\r\n"


def test_set_syntax_is_checked_before_the_expire_value(run):
    assert run("SET", "k", "v", "EX", "abc", "NX", "XX") == SYNTAX


# -- MGET, MSET, DEL, EXISTS, DBSIZE, FLUSHALL ---------------------------------------------


def test_mget_and_mset(run):
    assert run("MSET", "a", "1", "b", "2") == b"+OK\r\n"
    assert run("MGET", "a", "missing", "b") == b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n"
    assert run("MSET", "a", "1", "b") == wrong_arity("mset")


def test_del_counts_each_key_once_and_exists_counts_duplicates(run):
    run("MSET", "a", "1", "b", "2")
    assert run("EXISTS", "a", "a", "b", "c") == b":3\r\n"
    assert run("DEL", "a", "a", "c") == b":1\r\n"
    assert run("EXISTS", "a") == b":0\r\n"


def test_expired_keys_do_not_exist(run, clock):
    run("SET", "k", "v", "PX", "10")
    clock.tick(0.01)
    assert run("EXISTS", "k") == b":0\r\n"
    assert run("DEL", "k") == b":0\r\n"


def test_dbsize_and_flushall(run):
    run("MSET", "a", "1", "b", "2")
    assert run("DBSIZE") == b":2\r\n"
    assert run("FLUSHALL") == b"+OK\r\n"
    assert run("DBSIZE") == b":0\r\n"
    run("SET", "a", "1")
    assert run("FLUSHDB", "ASYNC") == b"+OK\r\n"
    assert run("FLUSHALL", "sync") == b"+OK\r\n"
    assert run("FLUSHALL", "later") == SYNTAX
    assert run("FLUSHALL", "sync", "async") == SYNTAX


def test_dbsize_counts_expired_keys_not_yet_reclaimed_like_redis(run, clock):
    run("SET", "k", "v", "EX", "1")
    clock.tick(2)
    assert run("DBSIZE") == b":1\r\n"


def test_a_full_cache_evicts_the_least_recently_used_key(clock):
    cache = TTLCache(2, ttl=None, clock=clock)
    for key in (b"a", b"b"):
        execute(cache, [b"SET", key, b"1"])
    execute(cache, [b"GET", b"a"])  # a is now the most recent
    execute(cache, [b"SET", b"c", b"1"])
    assert execute(cache, [b"MGET", b"a", b"b", b"c"]) == b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n1\r\n"


# -- INCR family -------------------------------------------------------------------------


def test_incr_decr_incrby_decrby(run):
    assert run("INCR", "n") == b":1\r\n"
    assert run("INCRBY", "n", "41") == b":42\r\n"
    assert run("DECR", "n") == b":41\r\n"
    assert run("DECRBY", "n", "50") == b":-9\r\n"
    assert run("GET", "n") == b"$2\r\n-9\r\n"


@pytest.mark.parametrize("value", ["abc", "1.5", " 1", "01", "+1", "", "99999999999999999999"])
def test_incr_of_a_non_integer_value(run, value):
    run("SET", "n", value)
    assert run("INCR", "n") == NOT_INTEGER
    assert run("GET", "n") == b"$%d\r\n%s\r\n" % (len(value), value.encode())


def test_incr_overflow(run):
    run("SET", "n", str(LLONG_MAX))
    assert run("INCR", "n") == b"-ERR increment or decrement would overflow\r\n"
    run("SET", "n", str(LLONG_MIN))
    assert run("DECR", "n") == b"-ERR increment or decrement would overflow\r\n"
    assert run("INCRBY", "n", "x") == NOT_INTEGER
    assert run("DECRBY", "n", "x") == NOT_INTEGER
    assert run("DECRBY", "n", str(LLONG_MIN)) == b"-ERR decrement would overflow\r\n"
    assert run("INCRBY", "m", str(LLONG_MIN)) == b":%d\r\n" % LLONG_MIN


def test_incr_keeps_the_ttl(run, clock):
    run("SET", "n", "1", "EX", "100")
    clock.tick(40)
    assert run("INCR", "n") == b":2\r\n"
    assert run("TTL", "n") == b":60\r\n"
    run("SET", "m", "1")
    run("INCR", "m")
    assert run("TTL", "m") == b":-1\r\n"


def test_incr_with_a_default_ttl_keeps_no_expiry_for_a_key_without_one(clock):
    cache = TTLCache(10, ttl=30, clock=clock)
    execute(cache, [b"INCR", b"fresh"])  # a new key gets the cache's default TTL
    assert execute(cache, [b"TTL", b"fresh"]) == b":30\r\n"
    cache.touch(b"fresh", None)  # no expiry now
    execute(cache, [b"INCR", b"fresh"])
    assert execute(cache, [b"TTL", b"fresh"]) == b":-1\r\n"


# -- EXPIRE, PEXPIRE, TTL, PTTL -------------------------------------------------------------


def test_ttl_and_pttl_of_missing_and_persistent_keys(run):
    assert run("TTL", "k") == b":-2\r\n"
    assert run("PTTL", "k") == b":-2\r\n"
    run("SET", "k", "v")
    assert run("TTL", "k") == b":-1\r\n"
    assert run("PTTL", "k") == b":-1\r\n"


@pytest.mark.parametrize(("px", "ttl"), [(1499, 1), (1500, 2), (499, 0), (500, 1), (100000, 100)])
def test_ttl_rounds_milliseconds_like_redis(run, px, ttl):
    run("SET", "k", "v", "PX", str(px))
    assert run("PTTL", "k") == b":%d\r\n" % px
    assert run("TTL", "k") == b":%d\r\n" % ttl


def test_expire_and_pexpire(run, clock):
    assert run("EXPIRE", "k", "10") == b":0\r\n"
    run("SET", "k", "v")
    assert run("EXPIRE", "k", "10") == b":1\r\n"
    assert run("TTL", "k") == b":10\r\n"
    assert run("PEXPIRE", "k", "2500") == b":1\r\n"
    assert run("PTTL", "k") == b":2500\r\n"
    clock.tick(2.5)
    assert run("GET", "k") == b"$-1\r\n"


@pytest.mark.parametrize("amount", ["0", "-1", "-100"])
def test_expire_in_the_past_deletes_the_key(run, amount):
    run("SET", "k", "v")
    assert run("EXPIRE", "k", amount) == b":1\r\n"
    assert run("EXISTS", "k") == b":0\r\n"


def test_expire_options_nx_xx_gt_lt(run):
    run("SET", "k", "v")
    assert run("EXPIRE", "k", "100", "XX") == b":0\r\n"  # no TTL yet
    assert run("EXPIRE", "k", "100", "GT") == b":0\r\n"  # none counts as infinite
    assert run("EXPIRE", "k", "100", "NX") == b":1\r\n"
    assert run("EXPIRE", "k", "200", "NX") == b":0\r\n"
    assert run("EXPIRE", "k", "50", "GT") == b":0\r\n"
    assert run("EXPIRE", "k", "200", "gt") == b":1\r\n"
    assert run("EXPIRE", "k", "300", "LT") == b":0\r\n"
    assert run("EXPIRE", "k", "150", "lt", "xx") == b":1\r\n"
    assert run("TTL", "k") == b":150\r\n"
    run("SET", "p", "v")
    assert run("PEXPIRE", "p", "5000", "LT") == b":1\r\n"  # infinite > anything


@pytest.mark.parametrize(
    ("options", "reply"),
    [
        (["FOO"], b"-ERR Unsupported option FOO\r\n"),
        (["NX", "XX"], b"-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"),
        (["NX", "GT"], b"-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"),
        (["GT", "LT"], b"-ERR GT and LT options at the same time are not compatible\r\n"),
    ],
)
def test_expire_option_errors(run, options, reply):
    run("SET", "k", "v")
    assert run("EXPIRE", "k", "10", *options) == reply


def test_expire_value_errors(run):
    run("SET", "k", "v")
    assert run("EXPIRE", "k", "ten") == NOT_INTEGER
    assert run("EXPIRE", "k", str(LLONG_MAX)) == (
        b"-ERR invalid expire time in 'expire' command\r\n"
    )
    assert run("PEXPIRE", "k", str(LLONG_MAX)) == (
        b"-ERR invalid expire time in 'pexpire' command\r\n"
    )
    assert run("TTL", "k") == b":-1\r\n"


# -- INFO, CONFIG, CLIENT, COMMAND -----------------------------------------------------------


def info_fields(reply: bytes) -> dict[str, str]:
    header, _, body = reply.partition(b"\r\n")
    assert int(header[1:]) == len(body) - 2  # a well-formed bulk string
    lines = body.decode().split("\r\n")
    return dict(line.split(":", 1) for line in lines if line and not line.startswith("#"))


def test_info_reports_the_cache_counters(run, clock, cache):
    run("SET", "a", "1")
    run("SET", "b", "2", "EX", "10")
    run("GET", "a")
    run("GET", "missing")
    run("SET", "c", "3", "PX", "1")
    clock.tick(0.001)
    run("GET", "c")
    fields = info_fields(run("INFO"))
    assert fields["keyspace_hits"] == "1"
    assert fields["keyspace_misses"] == "2"
    assert fields["expired_keys"] == "1"
    assert fields["evicted_keys"] == "0"
    assert fields["db0"] == "keys=2,expires=1,avg_ttl=9999"


def test_info_sections(run):
    assert run("INFO", "stats").startswith(b"$") and b"# Keyspace" not in run("INFO", "stats")
    assert run("INFO", "keyspace") == b"$12\r\n# Keyspace\r\n\r\n"
    assert b"# Stats\r\n" in run("INFO", "all") and b"\r\n\r\n# Keyspace" in run("INFO", "all")
    assert run("INFO", "nosuchsection") == b"$0\r\n\r\n"


def test_config_get_answers_what_redis_benchmark_asks(run):
    assert run("CONFIG", "GET", "save") == b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n"
    assert run("CONFIG", "get", "APPENDONLY") == b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
    assert run("CONFIG", "GET", "nothing") == b"*0\r\n"
    assert run("CONFIG", "GET", "maxmemory-*").count(b"allkeys-lru") == 1
    assert run("CONFIG", "GET", "*").startswith(b"*8\r\n")


def test_container_commands_errors_like_redis(run):
    assert run("CONFIG") == wrong_arity("config")
    assert run("CONFIG", "GET") == wrong_arity("config|get")
    assert run("CONFIG", "foo") == b"-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n"
    assert run("config", "SET", "x", "y") == b"-ERR unknown subcommand 'SET'. Try CONFIG HELP.\r\n"
    assert run("CLIENT") == wrong_arity("client")
    assert run("CLIENT", "SETINFO", "LIB-NAME") == wrong_arity("client|setinfo")
    assert run("COMMAND", "foo") == b"-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n"


def test_container_help_lists_the_subcommands(run):
    assert run("CONFIG", "HELP") == (
        b"*3\r\n+CONFIG <subcommand> [<arg> ...]. Subcommands are:\r\n+GET\r\n+HELP\r\n"
    )


def test_what_clients_send_on_connect(run):
    assert run("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == b"+OK\r\n"
    assert run("CLIENT", "SETINFO", "LIB-VER", "8.1.0") == b"+OK\r\n"
    assert run("CLIENT", "SETNAME", "worker-1") == b"+OK\r\n"
    assert run("COMMAND") == b"*0\r\n"
    assert run("COMMAND", "DOCS") == b"*0\r\n"
    assert run("COMMAND", "DOCS", "get") == b"*0\r\n"


# -- parse_int ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [(b"0", 0), (b"7", 7), (b"-7", -7), (b"9223372036854775807", LLONG_MAX),
     (b"-9223372036854775808", LLONG_MIN), (b"9223372036854775808", None),
     (b"-9223372036854775809", None), (b"-0", None), (b"007", None), (b"+1", None),
     (b" 1", None), (b"1 ", None), (b"1_000", None), (b"", None), (b"-", None),
     (b"1e3", None), (b"\xd9\xa3", None)],
)  # fmt: skip
def test_parse_int_is_as_strict_as_string2ll(text, value):
    assert parse_int(text) == value
