"""veille: monitor Moroccan news outlets, fold duplicates into stories, flag topics with
their reasons, mail a digest.

The package itself is the operator layer — the CLI (`veille.cli`), the daemon, status,
demo, digest and mailer — over three layers that import one way only:
`veille.crawler` (Scrapy) → `veille.pipeline` (pure stages) → `veille.storage` (every
SQL statement). `tests/unit/test_layers.py` fails when a lower layer imports a higher one.
"""
