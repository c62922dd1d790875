"""The README's challenge-2 walk-through runs as written, and says what really happens.

Each ``curl`` line of the section is run with bash, in order, against
``python -m lab.api`` on a free port (the only change to the text: the port).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

PORT_IN_README = "127.0.0.1:8001"


def walkthrough(repo_root) -> list[str]:
    text = (repo_root / "README.md").read_text()
    section = text.split("### Challenge 2: API design and REST", 1)[1]
    section = re.split(r"\n##+ ", section, maxsplit=1)[0]  # up to the next heading
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("curl ")]


@pytest.fixture
def api_server():
    process = subprocess.Popen([sys.executable, "-m", "lab.api", "--port", "0",
                                "--no-access-log"], stdout=subprocess.PIPE, text=True)
    try:
        ready = process.stdout.readline()
        yield re.search(r"http://(127\.0\.0\.1:\d+)", ready).group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_curl_walkthrough_runs_as_written(repo_root, api_server):
    commands = walkthrough(repo_root)
    assert len(commands) == 12
    out = []
    for command in commands:
        done = subprocess.run(["bash", "-c", command.replace(PORT_IN_README, api_server)],
                              capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout.strip(), command
        out.append(done.stdout)
    assert json.loads(out[0]) == {"status": "ok", "store": "memory"}
    assert json.loads(out[3])["data"]["category"] == {"id": 1, "name": "Work"}
    assert json.loads(out[4])["total"] == 1  # search is case-insensitive
    assert json.loads(out[5])["data"]["status"] == "completed"
    assert [e["path"] for e in json.loads(out[6])["errors"]] == ["title", "userId", "colour"]
    assert out[7].startswith("HTTP/1.1 400") and '"path":"id"' in out[7]
    assert out[8].startswith("HTTP/1.1 405") and "Allow: DELETE, GET, HEAD, PUT" in out[8]
    assert json.loads(out[9]) == {"message": "Email already in use"}
    assert out[10].strip() == "204"
    task = json.loads(out[11])["data"]
    assert (task["userId"], task["user"], task["title"]) == (None, None, "Write the report")
