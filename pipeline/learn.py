"""The crawl process's side of template learning: one `Evidence` per outlet.

Loaded from storage the first time a crawl meets the outlet (old lines pruned then), handed
to extraction as a frozen `Template` snapshot with each page, and grown in memory by every
page stored, after its transaction commits (the same transaction recorded the page's lines
in storage). Extraction workers never touch the database.

Only the template's lines (on MIN_PAGES pages or more) are loaded: the rare ones, most of
an outlet's up to 20,000 rows, matter only once a page carries them again, so a line a
stored page carried that the evidence does not hold is read back from storage (which has
just counted it) before the next snapshot. What is learnt is what loading every line
gave; what is read follows the crawl's pages, not the outlet's history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial

from veille.pipeline.template import MIN_PAGES, MIN_TITLE, Template, line_key
from veille.storage import templates as st
from veille.storage.db import Database

MAX_TITLES = 2_000  # headlines kept in memory per outlet (storage loads the newest 500)

Lookup = Callable[[Iterable[str]], Iterable[tuple[str, int, int]]]  # stored (fingerprint, pages, since)


class Evidence:
    """What one outlet's pages say about its template; not thread-safe (one per Processor)."""

    def __init__(self, outlet: str, pages: int = 0, lines: Iterable[tuple[str, int, int]] = (),
                 titles: Iterable[str] = (), lookup: Lookup | None = None) -> None:
        """`lookup`, when given: the stored (fingerprint, pages, since) of lines, for those
        a page carries that `lines` left out (`lines` then holds at least every line on
        MIN_PAGES pages); without it an unknown line is new."""
        self.outlet = outlet
        self._lookup = lookup
        self._pending: set[str] = set()  # carried by pages learnt, stored counts not read yet
        self.pages = pages
        self.counts: dict[str, tuple[int, int]] = {fp: (n, since) for fp, n, since in lines}
        self.frequent = {fp: v for fp, v in self.counts.items() if v[0] >= MIN_PAGES}
        self.titles: set[str] = set()
        for title in titles:
            self.add_title(title)
        self._snapshot: Template | None = None

    def add_title(self, title: str) -> None:
        key = line_key(title)
        if len(key) >= MIN_TITLE and len(self.titles) < MAX_TITLES:
            self.titles.add(key)
            self._snapshot = None

    def snapshot(self) -> Template:
        """The evidence as a frozen Template (rebuilt only after it changed)."""
        if self._pending:
            self._read_pending()
        if self._snapshot is None:
            self._snapshot = Template(self.outlet, self.pages, dict(self.frequent),
                                      frozenset(self.titles))
        return self._snapshot

    def learn(self, fingerprints: Iterable[str], title: str) -> None:
        """One more page of the outlet, carrying these lines, with this headline."""
        for fp in fingerprints:
            if fp not in self.counts and self._lookup is not None:
                self._pending.add(fp)  # storage counted this page too: read it back
                continue
            carried, since = self.counts.get(fp, (0, self.pages))
            self.counts[fp] = (carried + 1, since)
            if carried + 1 >= MIN_PAGES:
                self.frequent[fp] = (carried + 1, since)
        self.pages += 1
        self._snapshot = None
        self.add_title(title)

    def _read_pending(self) -> None:
        """The stored counts of the lines learnt that the evidence did not hold: after the
        pages' transactions committed, so they include them (a line pruned meanwhile is
        not counted, as in storage)."""
        assert self._lookup is not None
        for fp, n, since in self._lookup(self._pending):
            self.counts[fp] = (n, since)
            if n >= MIN_PAGES:
                self.frequent[fp] = (n, since)
        self._pending.clear()


def _stored_lines(db: Database, outlet: str, fingerprints: Iterable[str]) -> list[tuple[str, int, int]]:
    with db.transaction() as s:
        return st.line_counts(s, outlet, fingerprints)


def load(db: Database, outlet: str, now: datetime | None = None) -> Evidence:
    """The outlet's evidence as stored, after pruning lines it stopped carrying."""
    now = now or datetime.now(UTC)
    with db.transaction() as s:
        st.prune_lines(s, outlet, now)
        stored = st.load_evidence(s, outlet, now, min_pages=MIN_PAGES)
    return Evidence(outlet, stored.pages, stored.lines, reversed(stored.titles),
                    lookup=partial(_stored_lines, db, outlet))


def template_of(db: Database | None, outlet: str) -> Template:
    """A one-off snapshot (veille extract): the stored evidence, or the generic rules alone."""
    if db is None:
        return Template(outlet)
    with db.transaction() as s:
        stored = st.load_evidence(s, outlet, datetime.now(UTC), min_pages=MIN_PAGES)
    return Evidence(outlet, stored.pages, stored.lines, stored.titles).snapshot()
