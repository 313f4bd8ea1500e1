"""The upload-answer race fix (ui/streamlit_fixes.py): unit level, on Streamlit's real queue class.

The browser half of the proof is tests/test_browser_uploads.py (hostile file, then a valid one,
repeated in one browser); here the mechanism itself, which fails without the patch."""

from __future__ import annotations

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

from ui.streamlit_fixes import keep_upload_answers_across_reruns


def _answer(request_id: str) -> ForwardMsg:
    msg = ForwardMsg()
    msg.file_urls_response.response_id = request_id
    return msg


def _delta() -> ForwardMsg:
    msg = ForwardMsg()
    msg.delta.new_element.markdown.body = "old run's output"
    msg.metadata.delta_path[:] = [0, 1]
    return msg


def test_a_run_start_keeps_the_upload_answer_and_drops_old_output():
    keep_upload_answers_across_reruns()
    keep_upload_answers_across_reruns()  # idempotent: every page calls it on every rerun
    q = ForwardMsgQueue()
    q.enqueue(_delta())
    q.enqueue(_answer("req-1"))
    q.clear(retain_lifecycle_msgs=True)  # what AppSession does when a script run starts
    kinds = [m.WhichOneof("type") for m in q._queue]
    assert kinds == ["file_urls_response"], kinds
    assert q._queue[0].file_urls_response.response_id == "req-1"


def test_flush_sends_each_answer_once():
    keep_upload_answers_across_reruns()
    q = ForwardMsgQueue()
    q.enqueue(_answer("req-2"))
    sent = q.flush()
    assert [m.file_urls_response.response_id for m in sent] == ["req-2"]
    assert q.is_empty()  # not kept for a second send
    q.clear(retain_lifecycle_msgs=True)
    assert q.is_empty()
