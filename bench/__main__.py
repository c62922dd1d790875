"""``python -m bench``: run every registered comparison and report it.

    python -m bench                 run everything, print the table, save results
    python -m bench -k cache        only the benchmarks whose names match
    python -m bench report          the table of the latest saved run
    python -m bench report --write-readmes
                                    regenerate the README tables from it

A run is one pytest session over ``bench/`` in a child process (its log goes
to ``bench/results/tmp/``); this process draws the progress bar from the
child's event file, then turns the measurements into the table, a JSON record
and a PNG chart in ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from bench import report
from bench.registry import all_comparisons
from lab.cli import OneLineParser

TMP = report.RESULTS / "tmp"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python -m bench",
        description="Run the lab-vs-production comparisons and report the ratios.",
    )
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the benchmarks (the default)")
    for p in (parser, run):
        p.add_argument("-k", dest="select", default=None,
                       help="only benchmarks matching this pytest -k expression")
    show = sub.add_parser("report", help="show a saved run")
    show.add_argument("results", nargs="?", type=Path, default=None,
                      help="a bench/results/*.json file (default: the latest)")
    show.add_argument("--write-readmes", action="store_true",
                      help="rewrite the measured tables in README.md and lab/*/README.md")
    return parser.parse_args(argv)


def run_pytest(select: str | None, stamp: str) -> tuple[int, Path, Path, Path]:
    TMP.mkdir(parents=True, exist_ok=True)
    events, recorded = TMP / f"{stamp}.events", TMP / f"{stamp}.recorded"
    timings, log = TMP / f"{stamp}.benchmark.json", TMP / f"{stamp}.log"
    args = [sys.executable, "-m", "pytest", str(report.ROOT / "bench"), "-p", "bench.progress",
            "-q", "--benchmark-min-rounds=5", "--benchmark-max-time=0.5",
            f"--benchmark-json={timings}", f"--lab-results={recorded}", f"--lab-events={events}"]
    if select:
        args += ["-k", select]
    with log.open("w") as out:
        child = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=report.ROOT)
        follow(child, events)
    return child.returncode, timings, recorded, log


def follow(child: subprocess.Popen, events: Path) -> None:
    """Draw a progress bar from the child's event file until it exits."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
               "{task.total}"), TimeElapsedColumn())
    seen = 0
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("collecting", total=None)
        while True:
            exited = child.poll() is not None
            lines = events.read_text().splitlines() if events.exists() else []
            for line in lines[seen:]:
                event = json.loads(line)
                if "total" in event:
                    bar.update(task, total=event["total"])
                elif "start" in event:
                    bar.update(task, description=event["start"].split("::")[-1][:60])
                elif event.get("when") == "call" or event.get("outcome") != "passed":
                    bar.advance(task)
                    if event["outcome"] != "passed":
                        bar.console.print(f"[red]{event['outcome']}[/red] {event['done']}")
            seen = len(lines)
            if exited:
                break
            time.sleep(0.2)
        bar.update(task, description="done")


def print_table(record: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in ("component", "operation", "lab", "production", "lab figure",
                 "production figure", "ratio", "target"):
        table.add_column(name, justify="right" if "figure" in name or name == "ratio" else "left")
    for r in report.rows_of(record):
        mark = {True: "[green]met[/green]", False: "[red]missed[/red]", None: ""}[r.meets]
        table.add_row(r.component, r.operation, r.lab_name, r.production_name,
                      report.figure(r.lab, r.unit), report.figure(r.production, r.unit),
                      report.ratio_text(r.ratio), f"{r.target} {mark}".strip())
    Console(width=max(132, shutil.get_terminal_size().columns)).print(table)
    print("ratio = lab / production. ns/op and MiB: lower is better; ops/s: higher is better.")


def cmd_run(select: str | None) -> int:
    when = datetime.now().astimezone()
    stamp = f"{when:%Y-%m-%dT%H%M%S}"
    print(f"bench: running the comparisons (pytest log: {TMP / (stamp + '.log')})", flush=True)
    code, timings, recorded, log = run_pytest(select, stamp)
    benchmark_json = json.loads(timings.read_text()) if timings.exists() else None
    lines = [json.loads(x) for x in recorded.read_text().splitlines()] if recorded.exists() else []
    measured = report.measurements_from(benchmark_json, lines)
    rows = report.rows_from(all_comparisons(), measured)
    if not rows:
        print(f"bench: nothing was measured; see {log}", file=sys.stderr)
        return 1
    failures = 0 if code == 0 else 1
    path = report.save(rows, measured, when, failures)
    _, record = report.load(path)
    print_table(record, f"System Design Lab — {record['date']}")
    png = report.chart(record, path.with_suffix(".png"))
    print(f"bench: saved {path.relative_to(report.ROOT)} and {png.relative_to(report.ROOT)}")
    if code != 0:
        print(f"bench: some benchmarks failed (pytest exit {code}); see {log}", file=sys.stderr)
    return code


def cmd_report(results: Path | None, write_readmes: bool) -> int:
    try:
        path, record = report.load(results)
    except (FileNotFoundError, json.JSONDecodeError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    print_table(record, f"{path.name} — {record['date']}")
    if write_readmes:
        for readme in report.write_readmes(record):
            print(f"bench: updated {readme.relative_to(report.ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "report":
            return cmd_report(args.results, args.write_readmes)
        return cmd_run(args.select)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
