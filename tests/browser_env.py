"""The headless Chromium the browser tests (and scripts/screenshots.py, scripts/server_cpu.py) drive.

Test settings, not product code: the same flags ``bench app`` starts its browser with
(fmnist_core/bench/app.py), so a test sees the app as the benchmark does.
"""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# No sandbox (tests run as root in a container), no GPU, and no background traffic to the network.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
