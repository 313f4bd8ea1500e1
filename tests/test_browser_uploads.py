"""A hostile file, then a valid photo, again and again in one browser: every upload is taken.

Before ui/streamlit_fixes.py, Streamlit dropped the server's answer to the uploader's request for
upload URLs when a script run started at that moment, and 2-4 of 20 valid uploads after a hostile
file kept the old file and its refusal (measured on the AMD EPYC, no load; docs/RELIABILITY.md).
At that rate, 10 rounds catch the bug with ~75% probability per run of this test; the concurrency
test in test_concurrency.py adds 24 more uploads, without reloads.
"""

from __future__ import annotations

import pytest
from conftest import record, screenshot
from test_concurrency import _expect_answer, _open_predict, _upload, _upload_files

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROUNDS = 10


def test_hostile_then_valid_upload_is_never_stale(app_server, page, tmp_path):
    files = _upload_files(tmp_path)
    good = [p for p, ok in files if ok]
    hostile = [p for p, ok in files if not ok]
    _open_predict(page, app_server)
    uploader = page.locator("[data-testid='stFileUploader']")
    for i in range(ROUNDS):
        for path, is_good in ((hostile[i % len(hostile)], False), (good[i % len(good)], True)):
            _upload(page, path)
            try:
                # The uploader shows the new file's name: the upload was taken, not ignored.
                uploader.get_by_text(path.name, exact=True).wait_for(timeout=30_000)
                _expect_answer(page, is_good)
            except Exception:
                screenshot(page, f"uploads_round_{i}_{path.name}")
                raise
    assert not page.errors, page.errors
    record("uploads: hostile then valid, one browser", rounds=ROUNDS, uploads=2 * ROUNDS, lost_uploads=0)
