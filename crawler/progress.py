"""What `veille crawl` shows: a live per-outlet table while crawling, a summary table at the end.

The live table is redrawn by Rich's own refresh thread from the run's tallies (plain
integers written by the reactor thread). On a non-terminal only the summary is printed.
While the live table is up, log lines are routed through Rich so they scroll above it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from veille.crawler.spiders.context import OutletTally
    from veille.storage.crawl_runs import OutletCounts

STATUS_STYLE = {"ok": "green", "failing": "red", "blocked": "magenta", "running": "cyan"}


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _table(title: str, columns: tuple[str, ...]) -> Table:
    # light borders so eight columns and a long outlet name fit in 80 columns
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  show_edge=False, collapse_padding=True)
    for col in columns:
        table.add_column(col, justify="left" if col in ("outlet", "status") else "right",
                         no_wrap=col == "outlet")
    return table


def live_table(tallies: Mapping[str, OutletTally]) -> Table:
    table = _table("crawling", ("outlet", "discovered", "fetched", "new", "updated", "failed", "status"))
    for name, t in list(tallies.items()):
        c = t.counts
        state = t.status if t.close_reason or (t.counts.failed and t.status != "ok") else "running"
        table.add_row(name, str(c.discovered), str(c.fetched), str(c.new), str(c.updated),
                      str(c.failed), _status(state))
    return table


def summary_table(outlets: Mapping[str, OutletCounts], totals: OutletCounts,
                  title: str) -> Table:
    table = _table(title, ("outlet", "discovered", "fetched", "new", "updated", "skipped", "failed",
                           "status"))
    for name, c in outlets.items():
        table.add_row(name, str(c.discovered), str(c.fetched), str(c.new), str(c.updated),
                      str(c.skipped), str(c.failed), _status(c.status))
    table.add_section()
    table.add_row("[bold]total[/]", str(totals.discovered), str(totals.fetched),
                  f"[bold]{totals.new}[/]", str(totals.updated), str(totals.skipped),
                  str(totals.failed), "")
    return table


def problems(outlets: Mapping[str, OutletCounts], per_outlet: int = 3) -> list[str]:
    """A few error lines per outlet that is not ok, for under the summary table."""
    lines = []
    for name, c in outlets.items():
        if c.status != "ok" or c.errors:
            for err in c.errors[:per_outlet]:
                lines.append(f"{name}: {err}")
            if len(c.errors) > per_outlet:
                lines.append(f"{name}: … {len(c.errors) - per_outlet} more (veille status)")
    return lines


@contextmanager
def live_progress(tallies: Mapping[str, OutletTally], console: Console,
                  enabled: bool = True) -> Iterator[None]:
    """Show the live table for the duration of the block (only on a terminal)."""
    if not enabled or not console.is_terminal:
        yield
        return
    with Live(get_renderable=lambda: live_table(tallies), console=console,
              refresh_per_second=4, transient=True, redirect_stdout=True, redirect_stderr=True):
        moved = _route_logs_to(sys.stderr)  # sys.stderr is now Rich's proxy
        try:
            yield
        finally:
            for handler, stream in moved:
                handler.setStream(stream)


def _route_logs_to(proxy: object) -> list[tuple[logging.StreamHandler, object]]:  # type: ignore[type-arg]
    moved = []
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler and handler.stream in (sys.__stderr__, sys.__stdout__):
            moved.append((handler, handler.setStream(proxy)))
    return moved
