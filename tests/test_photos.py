"""Real clothing photos (CC0, tests/fixtures/photos): segmentation, pairs, the reject rule, the photos command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT

from fmnist_core.photos import folder_classes, labelled_photos
from fmnist_core.preprocess import load_image, prepare_photo
from fmnist_core.segment import segment

PHOTOS = ROOT / "tests" / "fixtures" / "photos"
TSHIRT = PHOTOS / "t-shirt" / "0bdfdcd8-8ca7-410b-8e92-d47ff1aa5546.jpg"
FLIPFLOPS = PHOTOS / "shoes" / "30b6fd9b-d172-4d5d-a1c1-c36d23f769dd.jpg"
HAT = PHOTOS / "hat" / "127708b5-72ad-4793-9512-3d33427459bb.jpg"
# A hat the photo model calls Coat with 72% probability: only the feature-space distance turns it away.
HAT_AS_COAT = PHOTOS / "hat" / "e2391cdc-85e5-47f4-b320-47a207fc7fba.jpg"
# A box drawn by hand around the T-shirt (x0, y0, x1, y1 in the photo's pixels).
TSHIRT_BOX = (10, 85, 228, 275)


def _rgb(path):
    return np.asarray(load_image(path).convert("RGB"))


def test_the_fixture_photos_are_few_small_and_licensed():
    photos, skipped = labelled_photos(PHOTOS)
    assert 10 <= len(photos) <= 20 and not skipped
    assert all(max(load_image(p).size) <= 320 for p, _ in photos)
    assert "CC0" in (PHOTOS / "LICENSE").read_text() and "CC0" in (PHOTOS / "README.md").read_text()


def test_the_mask_covers_the_garment_and_little_else():
    rgb = _rgb(TSHIRT)
    seg = segment(rgb)
    assert seg.fallback is None and seg.n_items == 1
    x0, y0, x1, y1 = TSHIRT_BOX
    inside = np.zeros(seg.mask.shape, bool)
    inside[y0:y1, x0:x1] = True
    # Nearly all of the mask lies on the garment's box, and it fills most of that box.
    assert (seg.mask & inside).sum() / seg.mask.sum() > 0.95
    assert (seg.mask & inside).sum() / inside.sum() > 0.6


def test_a_pair_of_shoes_yields_one_shoe():
    prep = prepare_photo(load_image(FLIPFLOPS))
    seg = prep.segmentation
    assert seg is not None and seg.n_items == 2
    assert prep.note is not None and "one of 2" in prep.note
    # The kept shoe lies in one half of the photo (the two lie side by side).
    x0, _, x1, _ = seg.box
    width = seg.mask.shape[1]
    assert x1 <= 0.6 * width or x0 >= 0.4 * width


def test_a_box_reseeds_the_mask():
    rgb = _rgb(FLIPFLOPS)
    h, w = rgb.shape[:2]
    free = segment(rgb)
    boxed = segment(rgb, box=(w * 0.5, 0, w, h))  # around the right-hand shoe only
    assert boxed.method == "grabcut (box)"
    assert boxed.mask[:, : int(w * 0.45)].sum() == 0  # outside the box is background
    assert not np.array_equal(free.mask, boxed.mask)


def test_folder_names_map_to_classes():
    assert folder_classes("t-shirt") == ((0,), (6,))
    assert folder_classes("shoes")[0] == (5, 7, 9)
    assert folder_classes("hat") == ((), ())  # out of scope: the right answer is a rejection
    assert folder_classes("Trouser") == ((1,), ()) and folder_classes("T-shirt_top") == ((0,), ())
    assert folder_classes("socks") is None


@pytest.fixture(scope="module")
def photo_predictor():
    from fmnist_core.predict import Predictor
    from fmnist_core.registry import default_photo_model

    spec = default_photo_model()
    assert spec == "shipped:fashion_cnn_photo"  # the photo model is shipped and used for photos
    return Predictor.from_spec(spec)


def test_a_hat_is_rejected_by_the_photo_model(photo_predictor):
    pred = photo_predictor.predict_image(load_image(HAT))
    assert pred.rejected and pred.reason
    record = pred.as_dict()
    assert record["rejected"] is True and record["reason"] == pred.reason
    assert record["distance"] == pytest.approx(pred.distance, abs=1e-3)  # the photo model ships its statistics


def test_a_confident_wrong_garment_is_turned_away_by_its_distance(photo_predictor):
    from fmnist_core.predict import REJECT_CONFIDENCE, REJECT_DISTANCE_FACTOR

    answer = photo_predictor.predict_image(load_image(HAT_AS_COAT))
    pred = answer.fashion_mnist_only or answer  # the CNN's own answer and rule (the photo head answers beside it)
    # Confident enough for the other two tests, and not a Bag: the distance decides.
    assert pred.label == "Coat" and pred.probability > max(REJECT_CONFIDENCE, 0.5)
    assert pred.distance is not None and pred.distance > REJECT_DISTANCE_FACTOR
    assert pred.rejected and "feature-space" in pred.reason and "Coat" in pred.reason


@pytest.mark.usefixtures("photo_predictor")
def test_photos_command_on_the_fixture_tree(capfd):
    from fmnist_core.__main__ import main

    # In-process (TensorFlow is loaded already by the fixture): the command as a user runs it.
    assert main(["photos", str(PHOTOS), "--json"]) == 0
    out, err = capfd.readouterr()
    report = json.loads(out)
    photos, _ = labelled_photos(PHOTOS)
    assert report["photos"] == len(photos) and report["model"] == "shipped:fashion_cnn_photo"
    assert report["in_scope"] + report["out_of_scope"] == report["photos"]
    assert 0 <= report["strict_accuracy"] <= report["lenient_accuracy"] <= 1
    assert 0 <= report["reject_rate_out_of_scope"] <= 1 and 0 <= report["reject_rate_in_scope"] <= 1
    # Every photo lands in exactly one cell of the confusion table.
    assert sum(sum(row.values()) for row in report["confusion"].values()) == report["photos"]
    assert report["confusion"]["hat"]["rejected"] >= 1  # the hat above is rejected here too
    assert report["seconds_per_photo"]["p50"] > 0
    assert f"{len(photos)}/{len(photos)} photos" in err  # progress on stderr


def test_a_segmented_photo_is_narrowed_as_a_flat_lay_and_a_plain_one_is_not(dataset):
    from fmnist_core.preprocess import FLAT_LAY_WIDTH
    from scripts.photo_like import render_photo

    flat = prepare_photo(load_image(TSHIRT))
    hanging = prepare_photo(load_image(TSHIRT), flat_lay=False)
    assert flat.steps[-1][0] == f"flat lay: width x{FLAT_LAY_WIDTH:g}"
    assert all(not name.startswith("flat lay") for name, _ in hanging.steps)
    on, off = flat.image > 32, hanging.image > 32
    assert on.any(0).sum() < off.any(0).sum()  # narrower
    assert on.any(1).sum() == off.any(1).sum()  # as tall
    # The heat map's frame shrinks with it, and stays inside the 28x28.
    x0, y0, x1, y1 = flat.frame_box
    assert 0 <= x0 < x1 <= 28 and x1 - x0 < hanging.frame_box[2] - hanging.frame_box[0]
    # A product photo on a plain background skips segmentation, so it keeps the dataset's shape.
    product = prepare_photo(render_photo(dataset.x_test[0], np.random.default_rng(0)))
    assert all(not name.startswith("flat lay") for name, _ in product.steps)
