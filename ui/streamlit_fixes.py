"""Fixes for Streamlit's server: two races (docs/RELIABILITY.md: lost file uploads, lost menu
clicks) and a cost paid after every script run (``skip_keras_session_clearing``).

The browser's file uploader asks the server for upload URLs (a ``file_urls_request``) and waits
for the answer before it uploads anything. The server puts the answer in the session's outgoing
queue; when a script run starts, the queue is cleared of everything but lifecycle messages
(``ForwardMsgQueue.clear(retain_lifecycle_msgs=True)``), and the answer is not one of them. A
file picked just as a run starts (after a hostile file, a rerun often follows at once) thus
never gets its URLs: the uploader keeps the old file, and picking again does not help, because
the front end's request is still pending. Measured in Chromium, one browser, no load: "broken
file, then a valid photo" lost 2-4 of 20 valid uploads before this fix (Streamlit 1.67).

The fix keeps unsent ``file_urls_response`` messages across that clear. It is applied once per
server process, from the page frame, before any session can upload.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

_RETAINED = ("file_urls_response",)


def keep_upload_answers_across_reruns() -> None:
    """Patch ``ForwardMsgQueue.clear`` so a run's start never drops an upload-URL answer."""
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

    original = ForwardMsgQueue.clear
    if getattr(original, "_fmnist_keeps_upload_answers", False):
        return

    def clear(self: Any, retain_lifecycle_msgs: bool = False, fragment_ids_this_run: list[str] | None = None) -> None:
        # Only the clear at a run's start retains anything; flush() clears without retaining,
        # after it has taken every message, so keeping answers there would send them twice.
        keep = [m for m in self._queue if m.WhichOneof("type") in _RETAINED] if retain_lifecycle_msgs else []
        original(self, retain_lifecycle_msgs, fragment_ids_this_run)
        kept = {id(m) for m in self._queue}
        self._queue.extend(m for m in keep if id(m) not in kept)

    clear._fmnist_keeps_upload_answers = True  # type: ignore[attr-defined]
    ForwardMsgQueue.clear = clear


def keep_page_changes_over_fragment_reruns() -> None:
    """Patch ``ScriptRequests`` so a live fragment's timer rerun cannot undo a click in the menu.

    The cause of the dropped menu click (docs/RELIABILITY.md): a click on another page asks for
    a full-app rerun of that page. While the running script has not yet reached a point where
    it can stop, the request waits. If the Train page's live panel (a fragment with
    ``run_every``) asks for its timer rerun in that window, Streamlit folds both into one
    request and takes the page of the newer one: a full-app rerun of the Train page. The click
    is gone, and nothing shows it. Seen in 2 of about 8 clean-clone CI runs, under load, when a
    panel run takes longer than its one-second timer.

    The fix: when a fragment rerun is folded into a pending full-app rerun, the page (and its
    query string) of the full-app rerun is kept. A fragment rerun never changes the page, so
    it has no page of its own to impose. Applied once per server process, from the page frame.
    """
    from dataclasses import replace

    from streamlit.runtime.scriptrunner_utils import script_requests as sr

    original = sr.ScriptRequests._request_rerun_locked
    if getattr(original, "_fmnist_keeps_page_changes", False):
        return

    def _request_rerun_locked(self: Any, new_data: Any) -> bool:
        pending = self._rerun_data if self._state == sr.ScriptRequestType.RERUN else None
        accepted = original(self, new_data)
        # Streamlit's own test of "whole app or fragments", for both requests.
        if accepted and pending is not None and sr._is_full_app_rerun(pending) and not sr._is_full_app_rerun(new_data):
            self._rerun_data = replace(
                self._rerun_data,
                page_script_hash=pending.page_script_hash,
                page_name=pending.page_name,
                query_string=pending.query_string,
            )
        return accepted

    _request_rerun_locked._fmnist_keeps_page_changes = True  # type: ignore[attr-defined]
    sr.ScriptRequests._request_rerun_locked = _request_rerun_locked


def skip_keras_session_clearing() -> None:
    """Patch the script runner so it stops calling ``keras.backend.clear_session()`` after every run.

    After each script run, fragment reruns included, Streamlit "cleans problem modules": if Keras
    is imported it clears the Keras session, which in Keras 3 empties TensorFlow's kernel cache
    and runs a full garbage collection of a heap that holds TensorFlow. With the Train page's
    live panel rerunning every second, that was 37% of the server's CPU samples (py-spy, one open
    Train page watching a run: the server used 0.65-0.69 of a core, two pages saturated it;
    docs/DEPLOY.md). The app needs none of it: models are loaded once and cached, and nothing
    relies on Keras' global name counters being reset. Matplotlib figures are still closed, as
    Streamlit does.
    """
    from streamlit.runtime.scriptrunner import script_runner

    if getattr(script_runner._clean_problem_modules, "_fmnist_skips_keras", False):
        return

    def _clean_problem_modules() -> None:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            with contextlib.suppress(Exception):  # as Streamlit: never fail a run over this
                plt.close("all")

    _clean_problem_modules._fmnist_skips_keras = True  # type: ignore[attr-defined]
    script_runner._clean_problem_modules = _clean_problem_modules
