"""The results table (Rich) and bench/results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.common import Figure


def _num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "—"
    if unit == "share":
        return f"{x:.3f}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def table(figures: list[Figure], info: dict[str, Any]) -> Table:
    t = Table(title=f"veille benchmarks — {info.get('cpus')} CPUs ({info.get('cpu_model')}), "
                    f"Python {info.get('python')}, {info.get('date')}", show_lines=False)
    for col, kw in (("bench", {}), ("figure", {}), ("value", {"justify": "right"}),
                    ("baseline", {"justify": "right"}), ("ratio", {"justify": "right"}),
                    ("target", {}), ("met?", {"justify": "center"})):
        t.add_column(col, **kw)
    for f in figures:
        met = "—" if f.met is None else "[green]yes[/]" if f.met else "[red]no[/]"
        base = f"{_num(f.baseline)} {f.baseline_name}".strip() if f.baseline is not None else "—"
        t.add_row(f.bench, f.name, f"{_num(f.value, f.unit)} {f.unit}".strip(), base, _num(f.ratio), f.target or "—", met)
    return t


def print_table(figures: list[Figure], info: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=160)
    console.print(table(figures, info))
    notes = [f for f in figures if f.note]
    if notes:
        console.print("[bold]notes[/]")
        for f in notes:
            console.print(f"  {f.bench} · {f.name}: {f.note}", highlight=False, markup=False)


def write_json(path: Path, figures: list[Figure], info: dict[str, Any], extra: dict[str, Any]) -> None:
    """Write results.json: machine, parameters, and every figure (merged with a previous file
    for benchmarks not run this time, so `--only` updates one part)."""
    previous: dict[str, Any] = {}
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
    ran = {f.bench for f in figures}
    kept = [f for f in previous.get("figures", []) if f.get("bench") not in ran]
    kept_keys = {k: v for k, v in previous.items() if k not in ("machine", "figures", "note")}
    data = {**kept_keys, "machine": info, **extra, "figures": kept + [f.as_dict() for f in figures]}
    if kept:
        data["note"] = ("figures of " + ", ".join(sorted({f['bench'] for f in kept}))
                        + " are from an earlier run (see their machine in git history)")
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def markdown(data: dict[str, Any]) -> str:
    """results.json as the Markdown the README shows (machine line, then one table)."""
    m = data.get("machine", {})
    lines = [f"Measured {m.get('date', '?')[:10]} on {m.get('cpus')} CPUs ({m.get('cpu_model')}), "
             f"{m.get('memory_gb')} GB, Python {m.get('python')}, {m.get('platform')}, commit "
             f"{m.get('git')}; `make bench` took {round(m.get('bench_seconds', 0) / 60, 1)} min.", "",
             "| bench | figure | value | baseline | ratio | target | met? |",
             "|---|---|---:|---:|---:|---|:---:|"]
    for f in data.get("figures", []):
        met = "—" if f.get("met") is None else "yes" if f["met"] else "**no**"
        unit = f.get("unit", "")
        base = f"{_num(f.get('baseline'))} {f.get('baseline_name', '')}".strip() if f.get("baseline") is not None else "—"
        lines.append(f"| {f['bench']} | {f['name']} | {_num(f.get('value'), unit)} {unit} | {base} | "
                     f"{_num(f.get('ratio'))} | {f.get('target') or '—'} | {met} |")
    return "\n".join(lines)


ARCHIVE_COLUMNS = (("crawl_wall", "routine crawl"), ("crawl_cpu", "its CPU"), ("crawl_rss", "its peak RSS"),
                   ("settle", "story pass"), ("settle_cpu", "its CPU"), ("stories", "`stories --json`"),
                   ("status", "`status --json`"), ("digest", "`digest --dry-run`"), ("search", "`search`"),
                   ("db_bytes", "database"))


def _shown(key: str, value: float) -> str:
    return f"{value / 2**20:,.0f} MiB" if key in ("crawl_rss", "db_bytes") else f"{value:.2f} s"


def archive_markdown(data: dict[str, Any]) -> str:
    """The `archive` section of results.json as a Markdown table: per archive (and the
    time of its run), each measure's absolute value, its ratio to the 10k archive of the
    same run and that archive's value."""
    lines = ["| archive (its run ended, UTC) | " + " | ".join(label for _, label in ARCHIVE_COLUMNS) + " |",
             "|---|" + "---:|" * len(ARCHIVE_COLUMNS)]
    for e in data.get("archive", []):
        cells = []
        history = e.get("history_baseline_articles")  # a longer history: against the same daily volume
        base = e.get("history_baseline") if history else e.get("baseline")
        for key, _ in ARCHIVE_COLUMNS:
            value = e.get(key)
            suffix = "_history_ratio" if history else "_ratio"
            r = e.get(("db_bytes" if key == "db_bytes" else key) + suffix)
            if value is None:
                cells.append("—")
                continue
            is_base = e["articles"] == e.get("baseline_articles") and e["backend"] == "sqlite" and not history
            cells.append(_shown(key, value) if is_base
                         else f"{_shown(key, value)} (×{r:.2f} of {_shown(key, b)})"
                         if r is not None and (b := (base or {}).get(key)) is not None
                         else _shown(key, value))
        years = e.get("years", 1)
        name = f"{e['backend']} {e['articles']:,}" + (
            f" over {years} years, {e.get('per_day', 0):,.0f}/day (against {history:,} over 1 year)"
            if years > 1 and history else f" over {years} years" if years > 1 else "")
        lines.append(f"| {name} ({e.get('measured', '')[11:16]}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.report [--archive] [results.json]`: print the README's Markdown table
    (with --archive, the archive benchmark's table)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.report",
                                     description="Print the Markdown table of a benchmark results file.")
    parser.add_argument("results", nargs="?", type=Path, default=Path(__file__).with_name("results.json"),
                        help="the results file (default: bench/results.json)")
    parser.add_argument("--archive", action="store_true", help="the archive benchmark's table")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.results.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        parser.exit(2, f"bench.report: cannot read {args.results}: {exc}\n")
    print(archive_markdown(data) if args.archive else markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
