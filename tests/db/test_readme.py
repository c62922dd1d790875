"""The README's challenge-3 walk-through runs as written, and says what really happens.

Every ``.venv/bin/python -m lab.db`` line of the section's first block runs with
bash, in order, then the API starts on PostgreSQL and the ``curl`` line asks it
for a page. Three changes to the text: ``lab_test``'s ``public`` schema instead
of ``lab`` (through the environment, which the settings read first), 20,000
tasks instead of a million (the benchmarks seed the million, with the same
code), and a free port.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration
PORT_IN_README = "127.0.0.1:8001"


def blocks(repo_root) -> list[list[str]]:
    text = (repo_root / "README.md").read_text()
    section = text.split("### Challenge 3: database modelling and queries", 1)[1]
    section = re.split(r"\n##+ ", section, maxsplit=1)[0]  # up to the next heading
    return [[line.split("  #")[0].strip() for line in block.splitlines()]
            for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_the_walkthrough_runs_as_written(repo_root, migrated_public, owner_url, app_url):
    commands, serving = blocks(repo_root)
    env = {**os.environ, "DATABASE_OWNER_URL": owner_url, "DATABASE_URL": app_url}
    lab_db = [line for line in commands if line.startswith(".venv/bin/python -m lab.db")]
    assert len(lab_db) == 5 and "seed --tasks 1000000" in lab_db[0]
    out = []
    for line in lab_db:
        command = line.replace(".venv/bin/python", sys.executable).replace("1000000", "20000")
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              timeout=120, env=env, cwd=repo_root)
        assert done.returncode == 0, (line, done.stderr)
        out.append(done.stdout)
    assert "seeded 1,000 users, 12 categories and 20,000 tasks" in out[0]
    assert out[0].count("\n== ") + out[0].startswith("== ") >= 10  # every query, planned
    assert "0002_list_indexes" in out[1] and "pending" not in out[1]
    assert "with tasks_user_created_at_idx" in out[2] and "without tasks_user" in out[2]
    assert "== deep-offset" in out[3] and "== deep-keyset" in out[3]
    assert "with CREATE INDEX tasks_title_lower_idx" in out[4]

    api, curl = serving
    assert api.startswith(".venv/bin/python -m lab.api --port 8001 --store postgres")
    flags = ["0" if word == "8001" else word for word in api.split()[3:]]  # a free port
    process = subprocess.Popen([sys.executable, "-m", "lab.api", *flags],
                               stdout=subprocess.PIPE, text=True, env=env, cwd=repo_root)
    try:
        ready = process.stdout.readline()
        assert "store=postgres" in ready, ready
        port = re.search(r"http://(127\.0\.0\.1:\d+)", ready).group(1)
        done = subprocess.run(["bash", "-c", curl.replace(PORT_IN_README, port)],
                              capture_output=True, text=True, timeout=20)
    finally:
        process.terminate()
        process.wait(timeout=10)
    page = json.loads(done.stdout)
    assert [task["status"] for task in page["data"]] == ["pending", "pending"]
    assert page["total"] > 2_000  # a quarter of 20,000, give or take
