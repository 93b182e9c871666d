"""crawler/progress: what `veille crawl` shows while it runs and when it ends.

Rendered with a recording Rich console and read back as text: the live table says
"running" until an outlet is done or failing, the summary adds a total row, problems
keep a few errors per outlet, and the live display only takes over a terminal, routing
log lines through Rich while it is up and giving the handlers back after.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest
from rich.console import Console
from rich.table import Table

from veille.crawler.progress import live_progress, live_table, problems, summary_table
from veille.crawler.spiders.context import OutletTally
from veille.storage.crawl_runs import OutletCounts


def text(table: Table) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(table)
    return console.export_text()


def row(rendered: str, name: str) -> list[str]:
    (line,) = [ln for ln in rendered.splitlines() if ln.split()[:1] == [name]]
    return line.split()


def test_the_live_table_says_running_until_an_outlet_is_done_or_failing() -> None:
    busy, done, failing = OutletTally("busy"), OutletTally("done"), OutletTally("failing")
    busy.counts.discovered, busy.counts.fetched, busy.counts.new = 12, 5, 3
    busy.error("https://b/x", "HTTP 404")  # a dead link does not make an outlet failing
    done.close_reason = "finished"
    failing.sources, failing.sources_failed = 2, 2
    failing.error("https://f/feed", "timeout")
    shown = text(live_table({"busy": busy, "done": done, "failing": failing}))
    assert row(shown, "busy") == ["busy", "12", "5", "3", "0", "1", "running"]
    assert row(shown, "done")[-1] == "ok"
    assert row(shown, "failing")[-1] == "failing"


def test_the_summary_lists_every_outlet_and_the_totals() -> None:
    outlets = {"bladi": OutletCounts(10, 8, 5, 1, 2, 0, "ok"),
               "le360": OutletCounts(4, 0, 0, 0, 0, 4, "blocked", ["u: HTTP 403"])}
    totals = OutletCounts(14, 8, 5, 1, 2, 4)
    shown = text(summary_table(outlets, totals, "crawl run 7: ok in 3.0s"))
    assert "crawl run 7: ok in 3.0s" in shown
    assert row(shown, "bladi") == ["bladi", "10", "8", "5", "1", "2", "0", "ok"]
    assert row(shown, "le360") == ["le360", "4", "0", "0", "0", "0", "4", "blocked"]
    assert row(shown, "total") == ["total", "14", "8", "5", "1", "2", "4"]


def test_problems_keep_a_few_errors_per_outlet_and_count_the_rest() -> None:
    outlets = {
        "ok": OutletCounts(status="ok"),
        "noisy": OutletCounts(status="ok", errors=["a: HTTP 404"]),
        "down": OutletCounts(status="failing", errors=[f"u{i}: timeout" for i in range(5)]),
    }
    assert problems(outlets) == [
        "noisy: a: HTTP 404",
        "down: u0: timeout", "down: u1: timeout", "down: u2: timeout",
        "down: … 2 more (veille status)",
    ]
    assert problems({"down": outlets["down"]}, per_outlet=5) == [f"down: u{i}: timeout" for i in range(5)]


@pytest.fixture()
def stderr_handler() -> Iterator[logging.StreamHandler]:  # type: ignore[type-arg]
    """A log handler on the real stderr, as veille's logging sets one up."""
    handler = logging.StreamHandler(sys.__stderr__)
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def test_off_a_terminal_nothing_is_drawn_and_logging_is_left_alone(
        stderr_handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with live_progress({"a": OutletTally("a")}, console):
        assert stderr_handler.stream is sys.__stderr__
    with live_progress({"a": OutletTally("a")}, Console(file=out, force_terminal=True), enabled=False):
        assert stderr_handler.stream is sys.__stderr__
    assert out.getvalue() == ""


def test_on_a_terminal_log_lines_go_through_rich_and_come_back_after(
        stderr_handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    other = logging.StreamHandler(io.StringIO())  # a handler of someone else's stream stays put
    logging.getLogger().addHandler(other)
    try:
        with live_progress({"a": OutletTally("a")}, console):
            assert stderr_handler.stream is sys.stderr is not sys.__stderr__  # Rich's proxy
            assert other.stream is not sys.stderr
            logging.getLogger("crawler").warning("a line above the table")
    finally:
        logging.getLogger().removeHandler(other)
    assert stderr_handler.stream is sys.__stderr__
    assert "a line above the table" in out.getvalue()
