"""Fixes for two races in Streamlit's server (docs/RELIABILITY.md): lost file uploads, lost menu clicks.

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
