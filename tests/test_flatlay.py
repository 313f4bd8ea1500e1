"""Flat-lay views for the photo preset: spread sleeves and shoes as phone photos show them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy import ndimage

from fmnist_core.flatlay import SHOES, SLEEVED, flat_lay_views, pair_shoes, spread_sleeves
from fmnist_core.pipeline import to_float


def _of_class(dataset, classes, n):
    idx = np.flatnonzero(np.isin(dataset.y_train, classes))[:n]
    return to_float(dataset.x_train[idx]), dataset.y_train[idx]


def _extent(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Height and width (px) of each item: rows and columns holding a pixel above 0.08."""
    on = images[..., 0] > 0.08
    return on.any(2).sum(1), on.any(1).sum(1)


def _view_all(view, dataset, classes, n):
    """``view`` applied to the first ``n`` training images of ``classes`` (seeded): the images, the
    views (checked to keep shape and range), and the extents before and after."""
    tf.random.set_seed(0)
    x, _ = _of_class(dataset, classes, n)
    out = np.asarray(view(x, tf.ones([n])))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1.0 + 1e-6
    return x, out, _extent(np.asarray(x)), _extent(out)


def test_spread_sleeves_widens_tops_and_keeps_the_framing(dataset):
    x, out, (h0, w0), (h1, w1) = _view_all(spread_sleeves, dataset, SLEEVED, 64)
    # Sleeves swung out: the item is wider for its height than the dataset's hanging sleeves.
    assert np.median(w1 / h1) > np.median(w0 / h0) + 0.1
    # Refitted like the dataset: the longest edge spans (nearly) the whole 28 px.
    assert np.median(np.maximum(h1, w1)) >= 27
    assert np.array_equal(np.asarray(spread_sleeves(x, tf.zeros([64]))), np.asarray(x))


def test_pair_shoes_makes_pairs_and_upright_views_from_side_views(dataset):
    x, out, (h0, w0), (h1, w1) = _view_all(pair_shoes, dataset, SHOES, 200)
    # The dataset's shoes are side views, wider than tall; pairs from above and turned shoes are not.
    assert (h0 > w0).mean() < 0.05
    assert (h1 > w1).mean() > 0.3
    # A pair from above is two separate items in one image (about half of the views).
    items = np.array([ndimage.label(img[..., 0] > 0.08)[1] for img in out])
    assert (items >= 2).mean() > 0.2
    assert np.array_equal(np.asarray(pair_shoes(x, tf.zeros([200]))), np.asarray(x))


def test_flat_lay_views_change_only_tops_with_sleeves_and_shoes(dataset):
    tf.random.set_seed(0)
    x, y = to_float(dataset.x_train[:300]), dataset.y_train[:300]
    out = np.asarray(flat_lay_views(x, tf.constant(y), 1.0, 1.0))
    changed = np.abs(out - np.asarray(x)).max(axis=(1, 2, 3)) > 0
    targeted = np.isin(y, SLEEVED + SHOES)
    assert not changed[~targeted].any()  # T-shirts, trousers, dresses and bags stay as they are
    assert changed[targeted].mean() > 0.95
    # One-hot labels pick the same images; a share of 0 changes none.
    one_hot = tf.one_hot(y, 10)
    by_one_hot = np.asarray(flat_lay_views(x, one_hot, 1.0, 1.0))
    assert np.array_equal(np.abs(by_one_hot - np.asarray(x)).max(axis=(1, 2, 3)) > 0, changed)
    assert np.array_equal(np.asarray(flat_lay_views(x, one_hot, 0.0, 0.0)), np.asarray(x))
