"""What the outlet spider hands its item pipeline (crawler.pipelines.ProcessorPipeline).

- `RawPage` (veille.pipeline.types): an article page fetched at the URL requested.
- `Redirected`: an article page reached through a redirect.
- `ClaimedAlias`: with a shared queue, a redirect whose target another request fetches.
"""

from __future__ import annotations

from dataclasses import dataclass

from veille.pipeline.types import RawPage


@dataclass(frozen=True)
class Redirected:
    """A page reached through a redirect: stored under its final URL, `alias` folded into it."""

    page: RawPage
    alias: str


@dataclass(frozen=True)
class ClaimedAlias:
    """Shared queue: `alias` redirects to `target`, which another request fetches.

    Folded into what `target` became when the run ends (by then it is stored)."""

    outlet: str
    alias: str
    target: str

