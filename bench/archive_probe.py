"""A `veille` command with bench-only instruments, for `bench.archive`.

`python -m bench.archive_probe [--settle-out F] [--sql-out F] -- crawl --config X` runs
`veille.cli.main` in this process after installing, as asked:

- `--settle-out`: the crawl's story pass (`veille.crawler.run._settle`, called once at
  the end of the crawl) wrapped to write its wall and CPU seconds to F as JSON;
- `--sql-out`: a SQLAlchemy event listener on every engine recording each distinct
  statement: how often it ran, its seconds, its rows, and where in the code it was sent
  from (the innermost frames of the package), written to F as JSON at exit.

Nothing of the product changes: the wrapper and the listener live in this process only.
The archive benchmark times its measured crawl with `--settle-out` alone (the SQL
listener costs a little per statement) and runs a second crawl on a copy with both.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

PACKAGE_DIRS = ("/app/", "/crawler/", "/pipeline/", "/storage/")


def _where() -> list[str]:
    """The innermost frames of the package on the stack: file:function, innermost first."""
    frames = [f for f in traceback.extract_stack()[:-3]
              if any(d in f.filename for d in PACKAGE_DIRS) and "/bench/" not in f.filename]
    return [f"{'/'.join(Path(f.filename).parts[-2:])}:{f.name}:{f.lineno}" for f in reversed(frames[-4:])]


class SqlRecorder:
    """Per statement text: count, seconds, rows, parameters count and where it came from."""

    def __init__(self) -> None:
        self.stats: dict[str, dict[str, Any]] = {}
        self._started: dict[int, float] = {}

    def install(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "before_cursor_execute", self.before)
        event.listen(Engine, "after_cursor_execute", self.after)

    def before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any,
               executemany: bool) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any,
              executemany: bool) -> None:
        spent = time.perf_counter() - self._started.pop(id(cursor), time.perf_counter())
        entry = self.stats.get(statement)
        if entry is None:
            nparams = len(params[0] if executemany and params else params or ())
            entry = self.stats[statement] = {"count": 0, "seconds": 0.0, "rows": 0, "params": nparams,
                                             "executemany": executemany, "where": _where()}
        entry["count"] += 1
        entry["seconds"] += spent
        rowcount = getattr(cursor, "rowcount", -1)
        entry["rows"] += rowcount if isinstance(rowcount, int) and rowcount > 0 else 0

    def write(self, path: Path) -> None:
        rows = [{"statement": s, **v} for s, v in self.stats.items()]
        rows.sort(key=lambda r: -r["seconds"])
        path.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")


def _time_settle(out: Path) -> None:
    import veille.crawler.run as run

    original = run._settle

    def timed(processor: Any) -> str | None:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return original(processor)
        finally:
            out.write_text(json.dumps({"seconds": time.perf_counter() - t0,
                                       "cpu_seconds": time.process_time() - c0}), encoding="utf-8")

    run._settle = timed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.archive_probe", description=__doc__.split("\n\n")[0])
    ap.add_argument("--settle-out", type=Path)
    ap.add_argument("--sql-out", type=Path)
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then veille's arguments")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.settle_out:
        _time_settle(args.settle_out)
    recorder = SqlRecorder() if args.sql_out else None
    if recorder is not None:
        recorder.install()
    from veille.cli import main as veille_main

    try:
        return veille_main(command)
    finally:
        if recorder is not None and args.sql_out:
            recorder.write(args.sql_out)


if __name__ == "__main__":
    sys.exit(main())
