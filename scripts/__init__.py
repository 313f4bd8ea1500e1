"""Measurement and maintenance scripts, run from the project root as modules (``python -m scripts.NAME``)
so they import ``fmnist_core`` without editing ``sys.path``; the tests import their helpers the same way."""
