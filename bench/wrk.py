"""``wrk`` driven from Python: a run's throughput, latency percentiles and, optionally, shares.

wrk is a load generator written in C; its Lua hooks let a run report exactly
what a benchmark needs. The ``done`` hook prints one machine-readable line
(requests per second, p50, p99, p99.9, non-2xx answers, socket errors), read
back by ``run``; wrk's own text report has no p99.9. With ``count_header``,
a ``response`` hook also counts each value of that response header (which
backend answered: ``X-Instance``) -- that makes wrk parse every response's
headers in Lua, which slows it, so a benchmark measures shares in a run of
their own, not in the timed ones.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_DONE = r'''
threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK requests=%d duration_us=%d p50_us=%d p99_us=%d p999_us=%d " ..
    "non2xx=%d socket_errors=%d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.status, e.connect + e.read + e.write + e.timeout))
  for _, name in ipairs(counted) do
    local n = 0
    for _, t in ipairs(threads) do n = n + t:get("count_" .. name) end
    io.write(string.format("COUNT %s %d\n", name, n))
  end
end
'''
_COUNT = r'''
function response(status, headers, body)
  local value = headers["{header}"]
  if value ~= nil and index[value] ~= nil then
    _G["count_" .. index[value]] = _G["count_" .. index[value]] + 1
  end
end
'''
_LINE = re.compile(r"^WRK (.*)$", re.MULTILINE)
_COUNTED = re.compile(r"^COUNT (\S+) (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class WrkRun:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    non_2xx: int  # answers outside 2xx/3xx
    socket_errors: int  # connect + read + write + timeout
    counts: dict[str, int] = field(default_factory=dict)  # header value → responses


def script(values: list[str] = (), header: str = "X-Instance") -> str:
    """The Lua script: the report line, and counters for the given header values."""
    names = [f"v{i}" for i in range(len(values))]
    lines = [f'counted = {{{", ".join(repr(n).replace(chr(39), chr(34)) for n in names)}}}',
             "index = {" + ", ".join(f'["{v}"] = "{n}"' for v, n in zip(values, names,
                                                                     strict=True)) + "}",
             *(f"count_{n} = 0" for n in names), _DONE]
    if values:
        lines.append(_COUNT.replace("{header}", header))
    return "\n".join(lines)


def run(url: str, seconds: float, connections: int, script_path: Path,
        threads: int = 1) -> WrkRun:
    """One wrk run against ``url`` (127.0.0.1 only), bounded in time."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: run `make services` first")
    assert url.startswith("http://127.0.0.1:"), url
    done = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                           "-s", str(script_path), url],
                          capture_output=True, text=True, timeout=seconds + 60, check=True)
    found = _LINE.search(done.stdout)
    if found is None:
        raise ValueError(f"wrk printed no report line:\n{done.stdout}\n{done.stderr}")
    figures = dict(pair.split("=") for pair in found.group(1).split())
    duration = int(figures["duration_us"]) / 1e6
    names = {f"v{i}": value for i, value in enumerate(_values_of(script_path))}
    return WrkRun(int(figures["requests"]) / duration, int(figures["p50_us"]) / 1000,
                  int(figures["p99_us"]) / 1000, int(figures["p999_us"]) / 1000,
                  int(figures["non2xx"]), int(figures["socket_errors"]),
                  {names[n]: int(c) for n, c in _COUNTED.findall(done.stdout)})


def _values_of(script_path: Path) -> list[str]:
    index = re.search(r"^index = \{(.*)\}$", script_path.read_text(), re.MULTILINE)
    return re.findall(r'\["([^"]*)"\]', index.group(1)) if index else []
