"""The fixes of ui/streamlit_fixes.py (lost uploads, lost menu clicks, the Keras session cleared
after every run), on Streamlit's real classes.

The browser half of the proof is tests/test_browser_uploads.py (hostile file, then a valid one,
repeated in one browser); here the mechanism itself, which fails without the patch."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
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


def test_a_live_panel_timer_does_not_undo_a_click_in_the_menu():
    """The dropped menu click: a fragment's timer rerun folded into a pending page change."""
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

    from ui.streamlit_fixes import keep_page_changes_over_fragment_reruns

    keep_page_changes_over_fragment_reruns()
    keep_page_changes_over_fragment_reruns()  # idempotent: every page calls it on every rerun
    requests = ScriptRequests()
    # The click on Home waits while the Train page's script is still running...
    assert requests.request_rerun(RerunData(page_script_hash="home", page_name="Home", query_string="a=1"))
    # ...and the live panel's one-second timer asks for its fragment rerun, from the Train page.
    timer = RerunData(page_script_hash="train", page_name="Train", fragment_id="live", is_auto_rerun=True)
    assert requests.request_rerun(timer)
    pending = requests._rerun_data
    # One full-app rerun, of the page that was clicked (unpatched Streamlit 1.67: of "train").
    assert (pending.page_script_hash, pending.page_name, pending.query_string) == ("home", "Home", "a=1")
    assert pending.fragment_id_queue == [] and not pending.is_fragment_scoped_rerun


def test_a_click_in_the_menu_still_wins_over_a_pending_timer_rerun():
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

    from ui.streamlit_fixes import keep_page_changes_over_fragment_reruns

    keep_page_changes_over_fragment_reruns()
    requests = ScriptRequests()
    requests.request_rerun(RerunData(page_script_hash="train", page_name="Train", fragment_id="live"))
    requests.request_rerun(RerunData(page_script_hash="home", page_name="Home"))
    pending = requests._rerun_data
    assert (pending.page_script_hash, pending.fragment_id_queue) == ("home", [])
    # Two timer reruns of the same page stay a fragment rerun of that page.
    again = ScriptRequests()
    again.request_rerun(RerunData(page_script_hash="train", fragment_id="live"))
    again.request_rerun(RerunData(page_script_hash="train", fragment_id="live"))
    assert again._rerun_data.fragment_id_queue == ["live"] and again._rerun_data.page_script_hash == "train"


@pytest.mark.usefixtures("runs_root")  # the app's runs folder: a fresh one
def test_a_script_run_leaves_the_keras_session_alone():
    """Streamlit clears the Keras session after every script run (a full garbage collection
    each time: most of the server's CPU while a Train page polls, docs/DEPLOY.md). The page frame
    turns that off. Keras' name counters show it: ``clear_session`` resets them to zero."""
    import keras
    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parent.parent
    at = AppTest.from_file(str(root / "app.py"), default_timeout=120)
    at.run()  # the frame applies the fix during the first run
    assert not at.exception, at.exception
    first = keras.backend.get_uid("fmnist_probe")
    at.run()
    assert not at.exception, at.exception
    assert keras.backend.get_uid("fmnist_probe") == first + 1  # 1 if the run had cleared the session


def test_no_garbage_collection_after_every_script_run():
    """The other full collection after each run is Streamlit's ``runner.postScriptGC``: off in the
    app's config, which ``streamlit run app.py`` reads from the project folder."""
    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
