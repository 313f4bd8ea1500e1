"""Teaching a photo head from a class's photos (fmnist_core.teach, teach_input, heads) and the CLI.

Hostile input first (no TensorFlow): each refusal or skip is one line naming the file and the fix.
Then one real teaching on 6 photos with the shipped photo model, and the store's permissions.
Assertions are about plumbing and honesty (counts, folds, files, who may delete), never about
what 6 photos happen to teach.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from teach_photos import make_folder, make_zip

from fmnist_core import access, head, heads, teach, teach_input
from fmnist_core.teach_input import TeachError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("teach") / "photos")


@pytest.fixture(scope="module")
def predictor():
    from fmnist_core.predict import Predictor
    from fmnist_core.registry import default_photo_model

    return Predictor.from_spec(default_photo_model())


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text, text
    return text


# ---------------------------------------------------------------- hostile input (no TensorFlow)


def test_folder_and_zip_find_the_same_photos(folder):
    a = teach_input.collect(folder)
    b = teach_input.from_zip(make_zip(folder))
    assert sorted(p.folder for p in a.photos) == sorted(p.folder for p in b.photos) == ["hat"] * 3 + ["pants"] * 3
    assert not a.skipped and not b.skipped


def test_hostile_zip_members_are_skipped_and_named(folder):
    link = zipfile.ZipInfo("my-class/hat/link.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    buf = io.BytesIO(make_zip(folder))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("../evil.jpg", b"x")
        zf.writestr("/etc/passwd.jpg", b"x")
        zf.writestr(link, "/etc/passwd")
        zf.writestr("my-class/hat/notes.txt", b"hello")
        zf.writestr("my-class/hat/broken.jpg", b"\xff\xd8\xff not really a jpeg")
        zf.writestr("my-class/pants/bomb.png", b"\0" * (30 * 2**20), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("loose.jpg", b"x")
        zf.writestr("my-class/socks/a.jpg", b"x")
    got = teach_input.from_zip(buf.getvalue())
    why = dict(got.skipped)
    assert "leaves the zip" in why["../evil.jpg"]
    assert "absolute" in why["/etc/passwd.jpg"]
    assert "symbolic link" in why["my-class/hat/link.jpg"]
    assert "not an image" in why["my-class/hat/notes.txt"]
    assert "over 25 MB" in why["my-class/pants/bomb.png"]
    assert "class folder" in why["loose.jpg"]
    assert got.unknown_folders == ["socks"]
    prep = teach.prepare(got)  # the broken JPEG passes the name checks and fails in the pipeline
    assert len(prep.x28) == 6 and prep.x28.shape[1:] == (28, 28)
    assert "not an image file we can read" in dict(prep.skipped)["my-class/hat/broken.jpg"]


def test_zip_bomb_ratio_and_total_size(monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("hat/a.png", b"\0" * (5 * 2**20))  # packs ~1000x
    assert "zip bomb" in dict(teach_input.from_zip(buf.getvalue()).skipped)["hat/a.png"]
    monkeypatch.setattr(teach_input, "MAX_UNPACKED", 2**20)
    with pytest.raises(TeachError, match="unpacks to 5 MB; the limit is 1 MB") as e:
        teach_input.from_zip(buf.getvalue())
    one_line(e.value)


def test_too_many_photos_not_a_zip_and_missing(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(teach_input, "MAX_PHOTOS", 5)
    with pytest.raises(TeachError, match="holds 6 photos; the limit is 5 per head"):
        teach_input.collect(folder)
    with pytest.raises(TeachError, match="not a readable zip"):
        teach_input.from_zip(b"PK\x03\x04 nonsense")
    (tmp_path / "x.txt").write_text("hi")
    for bad, words in ((tmp_path / "x.txt", "neither a folder nor a zip"), (tmp_path / "nope", "does not exist")):
        with pytest.raises(TeachError, match=words) as e:
            teach_input.collect(bad)
        one_line(e.value)


def test_symlinks_in_a_folder_are_skipped(tmp_path):
    root = make_folder(tmp_path / "p")
    os.symlink("/etc/hostname", root / "hat" / "outside.jpg")
    got = teach_input.collect(root)
    assert "link" in dict(got.skipped)["hat/outside.jpg"]
    assert len(got.photos) == 6


def test_too_few_photos_and_one_class():
    with pytest.raises(TeachError, match="hat has 2 photo") as e:
        teach.check_classes(["hat", "hat", "pants", "pants", "pants"], only_mine=False)
    one_line(e.value)
    with pytest.raises(TeachError, match="only one class"):
        teach.check_classes(["hat"] * 4, only_mine=True)
    assert teach.check_classes(["hat"] * 4, only_mine=False) == {"hat": 4}  # the dev photos add classes
    with pytest.raises(TeachError, match="no usable photos"):
        teach.check_classes([], only_mine=False)


def test_upload_labels_and_folds():
    got = teach_input.from_uploads([("a.jpg", b"x", "Sneaker"), ("b.jpg", b"x", "None of the ten"), ("c", b"", "?")])
    assert [p.folder for p in got.photos] == ["Sneaker", "None of the ten"]
    assert "not one of the ten" in dict(got.skipped)["c"]
    probs = np.eye(10)[[7, 9, 0]]
    assert teach.labels_for(["Sneaker", "none", "shoes"], probs).tolist() == [7, teach.NONE, 5]
    parts = teach.folds(["a"] * 3 + ["b"] * 5, 3, seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(8)) and all(len(p) >= 2 for p in parts)


# ---------------------------------------------------------------- the store


def small_head() -> head.PhotoHead:
    rng = np.random.default_rng(0)
    return head.fit_head(rng.normal(size=(12, 4)), np.array([0, 10] * 6))


def test_store_owners_replace_and_delete(tmp_path):
    ada, bob = access.Actor("Ada"), access.Actor("Bob")
    teacher = access.Actor("T", "teacher")
    heads.save("ada-head", small_head(), {"photos": 12}, ada, root=tmp_path)
    assert [(h.name, h.owner, h.problem) for h in heads.list_heads(tmp_path)] == [("ada-head", "Ada", None)]
    with pytest.raises(heads.HeadStoreError, match="exists already") as e:
        heads.check_free("ada-head", replace=False, root=tmp_path)
    one_line(e.value)
    with pytest.raises(access.AccessError, match="Bob cannot replace Ada's head"):
        heads.save("ada-head", small_head(), {}, bob, replace=True, root=tmp_path)
    with pytest.raises(access.AccessError, match="Bob cannot delete Ada's head"):
        heads.delete("ada-head", bob, tmp_path)
    heads.save("ada-head", small_head(), {"photos": 99}, ada, replace=True, root=tmp_path)
    assert heads.get("ada-head", tmp_path).card["photos"] == 99
    heads.delete("ada-head", teacher, tmp_path)
    assert heads.list_heads(tmp_path) == [] and not any(tmp_path.iterdir())  # no temp folders left
    with pytest.raises(heads.HeadStoreError, match="invalid head name"):
        heads.check_free("../x", replace=False, root=tmp_path)


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(head, "save_head", boom)
    with pytest.raises(OSError):
        heads.save("x", small_head(), {}, root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_damaged_head_file_is_one_line(tmp_path):
    heads.save("h", small_head(), {}, root=tmp_path)
    (tmp_path / "h" / heads.HEAD_FILE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(head.HeadError, match="damaged") as e:
        heads.load("h", tmp_path)
    one_line(e.value)
    (tmp_path / "h" / heads.CARD_FILE).write_text("{not json")
    assert heads.list_heads(tmp_path)[0].problem == "its card head.json is missing or damaged"


# ---------------------------------------------------------------- real teaching


def test_teach_on_six_photos(folder, predictor, tmp_path):
    seen = []
    got = teach_input.collect(folder)
    result = teach.teach(
        got, "six", predictor=predictor, only_mine=True, root=tmp_path, progress=lambda f, _t: seen.append(f)
    )
    assert result.counts == {"hat": 3, "pants": 3} and result.k == 3 and result.dev_photos == 0
    assert seen[-1] == 1.0 and seen == sorted(seen)
    for p in result.per_class.values():
        assert 0 <= p["after"] <= 1 and 0 <= p["before_cnn"] <= 1
    assert len(result.wrong) == round(6 * (1 - result.overall["after"]))
    loaded = heads.load("six", tmp_path)
    shipped = teach.shipped_head(predictor.ref.path)
    feats = predictor.head_features(teach.prepare(got).x28, shipped)
    assert loaded.probabilities(feats).shape == (6, 11)
    card = heads.get("six", tmp_path).card
    # A taught head reads its features where the shipped one does (its fine-tuned feature model, if any).
    assert card["feature_model"] == (shipped.card.get("feature_model") if shipped else None)
    assert card["classes"] == ["hat", "pants"] and card["photos"] == 6 and card["owner"] == ""
    with pytest.raises(heads.HeadStoreError, match="exists already"):
        teach.teach(got, "six", predictor=predictor, root=tmp_path)


def test_teach_with_dev_features(folder, predictor, tmp_path):
    """The dev photos join every training split (here a small stand-in file of the shipped format)."""
    rng = np.random.default_rng(1)
    width = teach.load_dev_features(teach.dev_features_path(predictor.ref.path)).features.shape[1]
    dev = tmp_path / "dev.npz"
    np.savez(dev, features=rng.random((40, width), np.float32) * 3, labels=np.repeat([0, 3, 7, 10], 10))
    result = teach.teach(
        teach_input.collect(folder), "with-dev", predictor=predictor, root=tmp_path / "h", dev_features=dev
    )
    assert result.dev_photos == 40 and not result.only_mine
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(TeachError, match="missing or damaged") as e:
        teach.teach(
            teach_input.collect(folder),
            "bad",
            predictor=predictor,
            root=tmp_path / "h",
            dev_features=tmp_path / "bad.npz",
        )
    one_line(e.value)


def test_cli_teach_json_and_errors(folder, tmp_path):
    env = {**os.environ, "FMNIST_HEADS_DIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "fmnist_core", "teach", str(folder), "--name", "cli", "--only-mine", "--json"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    card = json.loads(out.stdout.strip().splitlines()[-1])
    assert card["counts"] == {"hat": 3, "pants": 3} and Path(card["path"]).is_dir()
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == (
        "error: a head called 'cli' exists already: pick another name, or replace it"
    )
    listed = subprocess.run(
        [sys.executable, "-m", "fmnist_core", "heads", "--json"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert [h["name"] for h in json.loads(listed.stdout)] == ["cli"]
