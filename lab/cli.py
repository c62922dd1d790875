"""What every command line of the lab shares.

``OneLineParser``: argparse prints the whole usage block before an error; the
lab's commands print one line instead -- ``python -m lab.cache: error:
argument --port: ... (see --help)`` -- and exit 2, which is easier to read and
to test. Subcommand parsers inherit it (argparse builds them from the parent's
class).
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
