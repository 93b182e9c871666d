"""Imported once by the extraction pool's fork server (`crawler.pipelines`), so that each
worker is forked with what it would otherwise load on its first page: trafilatura and
its lazy tables, htmldate, the language model (py3langid decompresses ~0.5 s of numpy
arrays), datasketch with the scipy under it. Loaded once per run instead of once per
worker; the workers share the pages of memory until they write to them."""

from veille.crawler.pipelines import _ready

_ready()
