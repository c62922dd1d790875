"""lab/lb/README.md says what the code does: its health table is health.TRANSITIONS, every
test it names exists, the measured section has its markers, and it ends with the limits."""

import re
from pathlib import Path

from lab.lb.health import TRANSITIONS, Event, State

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "lab" / "lb" / "README.md").read_text()


def test_the_health_table_is_the_transition_table() -> None:
    header = next(line for line in README.splitlines() if line.startswith("| state | started"))
    events = [Event(cell.strip()) for cell in header.strip("|").split("|")[1:]]
    assert set(events) == set(Event)
    drawn = {}
    for state in State:
        row = next(line for line in README.splitlines()
                   if line.startswith(f"| **{state.name}** |"))
        for event, cell in zip(events, row.strip("|").split("|")[1:], strict=True):
            cell = cell.strip()
            if cell != "—":
                drawn[state, event] = state if cell == "·" else State[cell]
    assert drawn == TRANSITIONS


def test_every_test_named_exists() -> None:
    named = set(re.findall(r"(test_\w+\.py)::(test_\w+)", README))
    assert len(named) >= 10
    for file, test in named:
        source = (ROOT / "tests" / "lb" / file).read_text()
        assert re.search(rf"^(async )?def {test}\(", source, re.M), f"{file}::{test}"


def test_the_measured_section_is_marked_for_the_benchmarks() -> None:
    assert re.search(r"<!-- bench:lb -->\n.*<!-- /bench:lb -->", README, re.S)
    assert re.findall(r"^## (.+)$", README, re.M)[-1] == "Limits, and what to try next"
