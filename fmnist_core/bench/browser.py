"""How the project drives its own app in headless Chromium: ``bench app``, the browser tests and the
scripts that take screenshots or measure the server all use these, so each sees the app the same way.

Chromium is Debian's (``apt-get install chromium``), launched by Playwright with these flags: no
sandbox (tests and the benchmark run as root in a container), no GPU, no background traffic.
"""

from __future__ import annotations

import socket
from typing import Any

CHROMIUM = "/usr/bin/chromium"
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
# True once Streamlit has drawn the app and finished its script run (no "Running..." status widget).
WAIT_DONE = "() => document.querySelector('[data-testid=\"stApp\"]') && !document.querySelector('[data-testid=\"stStatusWidget\"]')"
# The pixel centre of an Evaluate confusion-matrix cell ([row = true, col = predicted]) from Plotly's axes.
CELL_CENTRE_JS = """
([row, col]) => {
  const gd = document.querySelector('.st-key-eval_cm .js-plotly-plot');
  const box = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return {x: box.left + xa._offset + xa.l2p(col), y: box.top + ya._offset + ya.l2p(row)};
}
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_app(page: Any, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script on a Playwright ``page`` (milliseconds)."""
    page.wait_for_function(WAIT_DONE, timeout=timeout)
