"""The headless Chromium the browser tests (and scripts/screenshots.py, scripts/server_cpu.py) drive.

One list of flags, ``bench app``'s own (fmnist_core/bench/app.py: no sandbox, as tests and the
benchmark run as root in a container; no GPU; no background traffic to the network), so a test
sees the app as the benchmark does.
"""

from __future__ import annotations

from fmnist_core.bench.app import CHROMIUM, CHROMIUM_ARGS

__all__ = ["CHROMIUM", "CHROMIUM_ARGS"]
