"""A fix for a race in Streamlit's server that loses file uploads (docs/RELIABILITY.md).

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
