"""Terminal rendering of stories and extraction results (Rich).

What outlets wrote (titles, text, URLs) is escaped: Rich would read "[sic]" as a style tag
and drop it, and fail on a stray "[/i]".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from veille.storage.views import StoryView


def _why(matched: Sequence[dict[str, Any]], most: int = 6) -> str:
    """Title hits first (they weigh most), each term once: 'title: dgsn · text: dgsi, …'."""
    parts = []
    shown: set[str] = set()
    for field in ("title", "text"):
        terms = [m["term"] for m in matched if m["field"] == field and m["term"] not in shown]
        terms = list(dict.fromkeys(terms))[: max(0, most - len(shown))]
        shown.update(terms)
        if terms:
            parts.append(f"{field}: {', '.join(terms)}")
    rest = len({m["term"] for m in matched} - shown)
    return escape(" · ".join(parts)) + (f" (+{rest} more)" if rest else "")


def print_stories(stories: Sequence[StoryView], console: Console | None = None) -> None:
    console = console or Console()
    if not stories:
        console.print("No tracked stories yet.")
        return
    table = Table(title=f"{len(stories)} stories", show_lines=True)
    table.add_column("id", justify="right")
    table.add_column("published")
    table.add_column("story")
    table.add_column("outlets")
    table.add_column("why flagged")
    for st in stories:
        when = (st.published or st.first_seen).strftime("%Y-%m-%d")
        outlets = escape(", ".join(dict.fromkeys(a.outlet for a in st.articles)))
        why = "\n".join(f"[green]{t.name}[/] ({t.score:g})\n{_why(t.matched)}" for t in st.topics) or "-"
        table.add_row(str(st.id), when, escape(st.title), outlets, why)
    console.print(table)


def print_extract(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    if result.get("skipped"):
        reason = f"{result['skipped']} ({result['url']})"
        console.print(f"[yellow]not an article[/]: {escape(reason)}")
        return
    console.print(f"[bold]{escape(result['title'])}[/]")
    console.print(
        f"published {result['published'] or '?'} · language {result['language'] or '?'}"
        f" · author {result['author'] or '?'}", markup=False
    )
    console.print()
    console.print(result["text"], markup=False)
    console.print()
    if not result["topics"]:
        console.print("topics: none matched")
    for t in result["topics"]:
        console.print(f"[green]{t['name']}[/] score {t['score']:g}: {_why(t['matched'])}")
    for d in result.get("template") or []:
        console.print(f"[dim]template, dropped[/] {escape(repr(d['line']))}: {escape(d['reason'])}")
