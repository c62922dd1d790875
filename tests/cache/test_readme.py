"""The Python session in lab/cache/README.md runs as printed (doctest)."""

import doctest
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "lab" / "cache" / "README.md"


def test_readme_examples_run_as_shown():
    result = doctest.testfile(str(README), module_relative=False, verbose=False)
    assert result.attempted >= 8
    assert result.failed == 0
