"""Benchmarks of veille (not tests): `python -m bench`, see bench/README.md."""
