"""Turn raw measurements into the results table, a JSON record, a chart and README tables.

Pure functions over plain data, apart from the few that write files: the
harness (``__main__``) calls them after a run, and ``python -m bench report``
calls them on a saved results file, so README tables are always regenerated
from ``bench/results``, never edited by hand.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from bench.registry import HIGHER_IS_BETTER, Comparison

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LAB_BETTER, PRODUCTION_BETTER = "#2a9d8f", "#e76f51"


@dataclass(frozen=True)
class Row:
    component: str
    operation: str
    lab_name: str
    production_name: str
    unit: str
    lab: float
    production: float | None  # None in a lab-only row
    ratio: float | None  # lab / production; None in a lab-only row
    target: str
    meets: bool | None


def measurements_from(benchmark_json: dict | None, recorded: list[dict]) -> dict[str, dict]:
    """id -> {"value", "unit"} from pytest-benchmark's JSON and ``record()`` lines."""
    found: dict[str, dict] = {}
    for bench in (benchmark_json or {}).get("benchmarks", []):
        extra = bench.get("extra_info", {})
        if "id" in extra and bench.get("stats"):
            per_op = bench["stats"]["median"] / extra.get("ops", 1)
            found[extra["id"]] = {"value": per_op * 1e9, "unit": "ns/op"}
    for line in recorded:
        found[line["id"]] = {"value": line["value"], "unit": line["unit"]}
    return found


def rows_from(comparisons: list[Comparison], measured: dict[str, dict]) -> list[Row]:
    rows = []
    for c in comparisons:
        lab = measured.get(c.lab)
        lab_name = c.lab.rsplit("/", 1)[-1]
        if c.production is None and lab is not None:  # lab only: the target bounds the figure
            target = f"{c.target_text} {lab['unit']}" if c.target else ""
            rows.append(Row(c.component, c.operation, lab_name, c.production_name, lab["unit"],
                            lab["value"], None, None, target, c.meets(lab["value"])))
            continue
        production = measured.get(c.production) if c.production else None
        if lab is None or production is None:
            continue  # not run this time (e.g. -k selected other tests)
        ratio = lab["value"] / production["value"]
        rows.append(Row(c.component, c.operation, lab_name, c.production_name, lab["unit"],
                        lab["value"], production["value"], ratio, c.target_text, c.meets(ratio)))
    return rows


def machine() -> dict:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = match.group(1).strip() if match else cpu
    import os

    described = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if shutil.which("redis-server"):
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
        described["redis"] = (re.search(r"v=(\S+)", out.stdout) or [None, "?"])[1]
    return described


def save(rows: list[Row], measured: dict, when: datetime, failures: int) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{when:%Y-%m-%dT%H%M%S}.json"
    record = {
        "date": when.isoformat(timespec="seconds"),
        "machine": machine(),
        "failures": failures,
        "rows": [asdict(r) for r in rows],
        "measurements": measured,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def load(path: Path | None = None) -> tuple[Path, dict]:
    if path is None:
        saved = sorted(RESULTS.glob("*.json"))
        if not saved:
            raise FileNotFoundError("no results yet in bench/results: run `make bench` first")
        path = saved[-1]
    return path, json.loads(path.read_text())


def rows_of(record: dict) -> list[Row]:
    return [Row(**r) for r in record["rows"]]


def figure(value: float | None, unit: str) -> str:
    if value is None:  # the production side of a lab-only row
        return "—"
    if unit == "ops/s":
        return f"{value:,.0f} ops/s"
    if unit == "ns/op":
        return f"{value:,.0f} ns"
    if unit == "ms" and value < 10:  # a plan's execution time: a fraction of a millisecond counts
        return f"{value:.3g} ms"
    return f"{value:,.1f} {unit}"


def ratio_text(ratio: float | None) -> str:
    """``1.27×``; below 0.1, two significant digits (``0.0012×``), so a small ratio is not 0."""
    if ratio is None:  # a lab-only row
        return "—"
    return f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.2g}×"


def verdict(row: Row) -> str:
    if row.meets is None:
        return ""
    return "met" if row.meets else "**missed**"


def better_side(row: Row) -> str:
    lab_better = row.ratio > 1 if row.unit in HIGHER_IS_BETTER else row.ratio < 1
    return "lab" if lab_better else "production"


def markdown(record: dict, component: str) -> str:
    """The README table for one component, with the date and the machine."""
    m = record["machine"]
    lines = [
        f"Measured {record['date'][:10]} on {m['cores']} cores ({m['cpu']}), "
        f"Python {m['python']}; ratio = lab / production, from one run "
        "(`make bench`; regenerate with `python -m bench report --write-readmes`).",
        "",
        "| operation | lab | production | lab figure | production figure | ratio | target |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in rows_of(record):
        if r.component == component:
            target = f"{r.target} {verdict(r)}".strip()
            lines.append(
                f"| {r.operation} | {r.lab_name} | {r.production_name} | "
                f"{figure(r.lab, r.unit)} | {figure(r.production, r.unit)} | "
                f"{ratio_text(r.ratio)} | {target} |"
            )
    return "\n".join(lines)


def write_readmes(record: dict, root: Path = ROOT) -> list[Path]:
    """Replace each ``<!-- bench:NAME -->`` … ``<!-- /bench:NAME -->`` section that this
    run measured. A section the run has no row for (``python -m bench -k queue`` measures
    one component) keeps the table, and the date, of the run that measured it."""
    changed = []
    measured = {r.component for r in rows_of(record)}
    readmes = [root / "README.md", *sorted((root / "lab").glob("*/README.md"))]
    pattern = re.compile(r"(<!-- bench:([\w-]+) -->\n).*?(<!-- /bench:\2 -->)", re.S)

    def table(m: re.Match) -> str:
        if m.group(2) not in measured:
            return m.group(0)
        return m.group(1) + markdown(record, m.group(2)) + "\n" + m.group(3)

    for readme in readmes:
        if not readme.exists():
            continue
        text = readme.read_text()
        new = pattern.sub(table, text)
        if new != text:
            readme.write_text(new)
            changed.append(readme)
    return changed


def chart(record: dict, path: Path) -> Path:
    """One horizontal bar per row: the ratio, log scale, with 1× and the target marked."""
    import matplotlib

    matplotlib.use("Agg")  # no screen here: draw straight to a file
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = [r for r in rows_of(record) if r.ratio is not None]  # lab-only rows have no bar
    labels = [f"{r.operation}: {r.lab_name} / {r.production_name}" for r in rows]
    ratios = [r.ratio for r in rows]
    colours = [LAB_BETTER if better_side(r) == "lab" else PRODUCTION_BETTER for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.5))
    ax.barh(range(len(rows)), ratios, color=colours)
    for i, r in enumerate(rows):
        if r.target:
            bound = float(re.search(r"[\d.]+", r.target).group())
            ax.plot([bound, bound], [i - 0.4, i + 0.4], color="black", linewidth=2)
        ax.text(r.ratio, i, f" {ratio_text(r.ratio)}", va="center", fontsize=8)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    low, high = min(ratios, default=1.0), max(ratios, default=1.0)  # default: no bar at all
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10) if 0.5 * low <= t <= 2 * high]
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=LAB_BETTER, label="the lab is better"),
                       Patch(color=PRODUCTION_BETTER, label="production is better")],
              loc="lower right", fontsize=8)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("lab / production (time, memory: lower is better; ops/s: higher) "
                  "— black tick: target")
    ax.set_title(f"System Design Lab, {record['date'][:10]}, {record['machine']['cores']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
