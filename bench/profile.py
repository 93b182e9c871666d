"""Profile a `veille crawl` child: py-spy when installed (all processes, low overhead),
else pyinstrument (declared in the dev extras; main process only, call-heavy code inflated).

`summarize` turns the profile into the text written to bench/profile_throughput.txt and
the seconds spent under the pipeline's main steps in the crawl process.
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import VENV_BIN

RATE = 100  # py-spy samples per second
# outermost time under these functions of the crawl process is reported
# (pipeline/process.py: a page is `load_known` → `decide` → `apply_plan` in one transaction)
STEPS = ("Processor.store", "PageProcessor.extract", "classify", "settle_stories",
         "assign_stories", "StoryIndex.match", "article_features", "minhash", "content_hash", "load_known",
         "best_copy", "decide", "apply_plan", "record_lines", "Processor.restrip", "prune_bands",
         "Database.transaction")
MARKS = {"sqlalchemy (any frame)": "sqlalchemy/"}  # label -> substring of any frame of a stack


def py_spy() -> str | None:
    found = VENV_BIN / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def command(out: Path) -> tuple[list[str], str]:
    """The profiler prefix for a crawl child, and which profiler it is."""
    spy = py_spy()
    if spy:
        return [spy, "record", "--subprocesses", "--nonblocking", "-f", "raw", "-r", str(RATE),
                "-o", str(out), "--"], "py-spy"
    return [sys.executable, "-m", "pyinstrument", "-r", "pyisession", "-o", str(out)], "pyinstrument"


def _name(frame: str) -> str:
    return frame.split(" (", 1)[0]


def _where(frame: str) -> str:
    name, _, rest = frame.partition(" (")
    return f"{name}  {rest.rsplit(':', 1)[0]}" if rest else name


def summarize(out: Path, kind: str, pages: int, wall: float, steps: tuple[str, ...] = STEPS,
              marks: dict[str, str] | None = None) -> tuple[dict[str, float], str]:
    """(seconds per step of the crawl process, report text).

    Args:
        out: the profile file.
        kind: "py-spy" or "pyinstrument" (see `command`).
        pages: pages of the crawl, for ms/page.
        wall: wall time of the profiled crawl.
        steps: function names (Class.method) whose outermost time is reported.
        marks: label -> substring of a frame: time of stacks having such a frame (py-spy only).
    """
    if kind == "py-spy":
        return _summarize_spy(out, pages, wall, steps, MARKS if marks is None else marks)
    return _summarize_pyinstrument(out, pages, wall, steps)


def _summarize_spy(out: Path, pages: int, wall: float, step_names: tuple[str, ...],
                   marks: dict[str, str]) -> tuple[dict[str, float], str]:
    steps: Counter[str] = Counter()
    marked: Counter[str] = Counter()
    own_main: Counter[str] = Counter()
    own_workers: Counter[str] = Counter()
    main = workers = 0
    worker_pids: set[str] = set()
    for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        procs = [f for f in frames if f.startswith("process ")]
        code = [f for f in frames if not f.startswith("process ") and f]
        if not code:
            continue
        if len(procs) <= 1:
            main += n
            own_main[_where(code[-1])] += n
            names = [_name(f) for f in code]
            for step in step_names:
                if step in names:
                    steps[step] += n
            for label, mark in marks.items():
                if any(mark in f for f in code):
                    marked[label] += n
        else:
            workers += n
            worker_pids.add(procs[-1].split(":", 1)[0])
            own_workers[_where(code[-1])] += n
    sec = {k: v / RATE for k, v in steps.items()}
    sec.update({k: v / RATE for k, v in marked.items()})
    main_s, workers_s = main / RATE, workers / RATE
    lines = [
        f"# veille crawl of {pages} synthetic pages under py-spy ({RATE} Hz, --subprocesses,",
        "# busy samples only). Written by bench/throughput.py; regenerate with `python -m bench --only throughput`.",
        "",
        f"wall time of the profiled crawl: {wall:.1f} s",
        f"crawl process (reactor: download, store) busy: {main_s:.1f} s = {main_s / wall:.0%} of the wall time",
        f"extraction workers ({len(worker_pids)} processes) busy: {workers_s:.1f} s",
        "",
        "## crawl process: time under each step (outermost, s; steps nest, so they do not add up)",
    ]
    lines += [f"{k:34} {v:8.2f}  {v / main_s if main_s else 0:6.1%}  {1000 * v / pages:6.2f} ms/page"
              for k, v in sorted(sec.items(), key=lambda kv: -kv[1])]
    lines += ["", "## crawl process: top functions by own time (s)"]
    lines += [f"{v / RATE:8.2f}  {k}" for k, v in own_main.most_common(40)]
    lines += ["", "## extraction workers: top functions by own time (s)"]
    lines += [f"{v / RATE:8.2f}  {k}" for k, v in own_workers.most_common(20)]
    sec["crawl process busy"] = main_s
    sec["extraction workers busy"] = workers_s
    return sec, "\n".join(lines) + "\n"


def _summarize_pyinstrument(out: Path, pages: int, wall: float,
                            steps: tuple[str, ...]) -> tuple[dict[str, float], str]:
    from pyinstrument.renderers import ConsoleRenderer
    from pyinstrument.session import Session

    session = Session.load(str(out))
    sec: dict[str, float] = dict.fromkeys(steps, 0.0)

    def walk(frame: Any, inside: frozenset[str]) -> None:
        name = frame.function or ""
        qual = f"{frame.class_name}.{name}" if getattr(frame, "class_name", None) else name
        now = inside
        if qual in sec and qual not in inside:
            sec[qual] += frame.time
            now = inside | {qual}
        for child in frame.children:
            walk(child, now)

    root = session.root_frame()
    if root is not None:
        walk(root, frozenset())
    tree = ConsoleRenderer(unicode=True, processor_options={"filter_threshold": 0.01}).render(session)
    flat = ConsoleRenderer(unicode=True, flat=True, show_all=True).render(session)
    sec["crawl process busy"] = session.cpu_time
    text = (f"# veille crawl of {pages} synthetic pages under pyinstrument (crawl process only;\n"
            "# extraction workers are not sampled; call-heavy Python code is inflated). Install\n"
            "# py-spy in the venv for an all-process, low-overhead profile.\n\n"
            f"wall time of the profiled crawl: {wall:.1f} s\n\n"
            "## crawl process: time under each step (outermost, s)\n"
            + "".join(f"{k:34} {v:8.2f}  {1000 * v / pages:6.2f} ms/page\n"
                      for k, v in sorted(sec.items(), key=lambda kv: -kv[1]))
            + f"\n## call tree (frames >= 1%)\n{tree}\n## top functions by own time\n"
            + "\n".join(flat.splitlines()[:50]) + "\n")
    return sec, text
