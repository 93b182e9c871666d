"""`veille topics test`: tune a topic rule safely, by back-testing it on the archive.

After editing a topic in config.yaml, run the rule as it is now over the stored stories
and see which it would add or drop compared with what was flagged when they were
stored, each with its reason (`pipeline.backtest`). Nothing is written: the stored
matches change only when the crawl stores an article again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from veille.pipeline.backtest import Backtest, backtest
from veille.pipeline.config import Config, TopicConfig
from veille.storage.archive import archived_stories
from veille.storage.db import Database


def run_backtest(cfg: Config, topics: Sequence[TopicConfig], since: datetime | None = None) -> Backtest:
    """Back-test `topics` on the stories of `cfg`'s database dated `since` or later (all
    when None), streamed in one read transaction."""
    db = Database(cfg.database.url)
    try:
        with db.transaction() as s:
            stories = archived_stories(s, since, topics=[t.name for t in topics])
            return backtest(stories, topics)
    finally:
        db.dispose()


def backtest_json(result: Backtest) -> str:
    """The changes as a JSON array (`--json`): what a script needs to gate a rule edit."""
    return json.dumps([c.as_json() for c in result.changes], ensure_ascii=False, indent=2)


def print_backtest(result: Backtest, since: datetime | None, console: Console | None = None) -> None:
    """Per topic one line of counts, then its changes: adds first, newest first."""
    console = console or Console()
    scope = f"since {since:%Y-%m-%d}" if since else "in the archive"
    for tally in result.tallies:
        console.print(
            Text.assemble(
                (tally.topic, "bold"),
                f": would add {tally.added} · would drop {tally.dropped} · unchanged {tally.kept} "
                f"(of {result.stories} stories {scope})",
            ),
            soft_wrap=True,  # one line, whatever the width: easy to grep
        )
        changes = [c for c in result.changes if c.topic == tally.topic]
        if not changes:
            continue
        table = Table(show_lines=True)
        table.add_column("change")
        table.add_column("story", justify="right")
        table.add_column("date")
        table.add_column("title")
        table.add_column("reason")
        for c in changes:
            kind = Text(c.kind, style="green" if c.kind == "add" else "red")
            # titles and terms come from the web and config: shown as text, never as markup
            table.add_row(kind, str(c.story_id), f"{c.date:%Y-%m-%d}", Text(c.title), Text(c.reason))
        console.print(table)
