"""Who a browser is in class mode: its key, an old link's key moved once, "Not me", the teacher's release.

Core tests drive fmnist_core.access on a runs folder; AppTest tests drive the Train page's
identity bar as learners and a teacher (a key in a cookie needs a real browser:
test_browser_identity.py).
"""

from __future__ import annotations

import pytest
from test_classroom import ANN, BOB, TEACHER, button, name_myself, session

from fmnist_core import access


def test_an_old_key_moves_once_and_the_teacher_releases_names(tmp_path):
    root = tmp_path / "runs"
    k_ann, k_bob = access.new_key(), access.new_key()
    access.claim_name(root, "Ann", k_ann)
    access.claim_name(root, "Bob", k_bob)
    assert access.claimed_names(root) == ["Ann", "Bob"]

    # A key that travelled in a link moves to a fresh key, once: the old one names nobody after.
    fresh = access.new_key()
    assert access.rekey(root, k_ann, fresh) == "Ann"
    assert access.name_for_key(root, fresh) == "Ann" and access.name_for_key(root, k_ann) is None
    assert access.rekey(root, k_ann, access.new_key()) is None
    with pytest.raises(access.AccessError, match="already used"):
        access.claim_name(root, "Ann", k_ann)  # nor can the old key take the name back
    with pytest.raises(ValueError):
        access.rekey(root, fresh, "not; a key")

    # Only the teacher releases; a learner may not free another's (or her own) name.
    for who in (ANN, BOB, access.Actor("", "learner")):
        with pytest.raises(access.AccessError, match="only the teacher"):
            access.release_name(root, "Ann", who)
    assert access.release_name(root, "  ann ", TEACHER) is True
    assert access.name_for_key(root, fresh) is None and access.claimed_names(root) == ["Bob"]
    assert access.release_name(root, "Ann", TEACHER) is False  # not in use any more
    k_new = access.new_key()
    assert access.claim_name(root, "Ann", k_new) == ANN  # the learner on her new computer
    assert access.name_for_key(root, k_bob) == "Bob"  # the others are untouched

    # A cookie or a link may hold anything: junk keys name nobody and claim nothing.
    for junk in ("", "short", "a;b=c" * 8, "x" * 65, None, 42):
        assert not access.valid_key(junk) and access.name_for_key(root, junk) is None
    with pytest.raises(ValueError):
        access.claim_name(root, "Cy", "a;b=c" * 8)


def test_old_link_not_me_and_release_on_the_train_page(runs_root, monkeypatch):
    ann = session(monkeypatch)
    name_myself(ann, "Ann")
    assert "me" not in ann.query_params  # a claim writes no key into the address any more
    old = ann.session_state["class_key"]

    # Ann's link from before the cookie (…/Train?me=<key>): the name moves to this session under a
    # fresh key, and the address loses the key.
    link = session(monkeypatch)
    link.query_params["me"] = old
    link.run()
    assert not link.exception, link.exception
    assert link.session_state["class_me"] == "Ann" and link.session_state["class_key"] != old
    assert "me" not in link.query_params
    # The same link again, in another browser: nobody, told why.
    again = session(monkeypatch)
    again.query_params["me"] = old
    again.run()
    assert again.session_state["class_me"] == "" and "me" not in again.query_params
    assert any("no longer carries a name" in e.value for e in again.error)

    # "Not me": this session forgets its key; the name stays reserved against everyone else.
    button(link, "class_not_me").click().run()
    assert link.session_state["class_me"] == "" and link.session_state["class_forget"]
    link.text_input(key="class_name_input").set_value("Ann").run()
    button(link, "class_name_ok").click().run()
    assert any("already used" in e.value for e in link.error) and link.session_state["class_me"] == ""

    # The teacher lists the names and releases Ann's; a learner whose name is released is nobody
    # on the next run, and Ann claims her name again.
    bob = session(monkeypatch)
    name_myself(bob, "Bob")
    teacher = session(monkeypatch)
    assert not any(b.key == "class_release" for b in teacher.button)  # locked: no names list
    teacher.text_input(key="class_teacher_pw").set_value("s3cret").run()
    button(teacher, "class_unlock").click().run()
    assert teacher.selectbox(key="class_release_pick").options == ["Ann", "Bob"]
    teacher.selectbox(key="class_release_pick").set_value("Bob").run()
    button(teacher, "class_release").click().run()
    assert access.claimed_names(runs_root) == ["Ann"]
    bob.run()
    assert bob.session_state["class_me"] == "" and button(bob, "train_start").disabled
    teacher.selectbox(key="class_release_pick").set_value("Ann").run()
    button(teacher, "class_release").click().run()
    name_myself(link, "Ann")
    assert not any(b.key == "class_release" for at in (ann, link, bob) for b in at.button)  # learners
