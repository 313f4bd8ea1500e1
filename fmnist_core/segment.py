"""Find the garment in a real photo: a mask, from classical methods that need no downloaded weights.

Phone photos of clothes lie on beds, floors and tables; the dataset's corner-colour trim only
works on a plain background. So before the dataset's steps a mask separates the garment:

* ``grabcut``: OpenCV's GrabCut (graph cut on colour models), seeded with the image border as
  background -- or with a user's box around the garment (outside = background).
* ``border``: colour distance to the border's colours (k-means in Lab), Otsu threshold,
  morphology and hole filling. Fast and needs no iterations.
* ``hybrid``: GrabCut seeded from the ``border`` mask (probable garment / probable background)
  instead of a plain rectangle.

All work on a copy whose longest side is ``SEG_SIDE`` pixels (the model sees 28x28; a 12 MP
photo would take seconds). Then the main item is kept: among the connected parts of the mask,
the largest and most central one, and how many similar-sized items there were is reported (a
pair of shoes gives one shoe and "one of 2").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEG_SIDE = 160  # longest side (px) of the copy the mask is computed on; chosen on clothing-dev
METHODS = ("grabcut", "border", "hybrid", "none")
DEFAULT_METHOD = "grabcut"  # measured best on clothing-dev (docs/PHOTOS.md)
BORDER_BAND = 0.04  # share of each side treated as background seed
GRABCUT_ITERATIONS = 4
# A border this uniform (Lab units) is a plain background: no segmentation. Measured: photo-like
# renders of the dataset 3.7-8.1, clothing-dev photos 8.8 and up (99.7% above 12).
PLAIN_SPREAD = 8.5
MIN_SIDE = 16  # smaller images are kept whole (an icon, a 28x28 that is not the dataset's)
BRIDGE = 0.06  # items joined by a neck thinner than this share of the image count as separate
CORE_SHARE = 0.4  # ... only when the eroded cores keep this share of the mask (solid items)
ITEM_SHARE = 0.25  # a part at least this share of the largest part counts as a separate item
MIN_ITEM = 0.004  # ... and at least this share of the image


@dataclass
class Segmentation:
    """The garment mask (bool, size of the input image) and what was found."""

    mask: np.ndarray
    method: str
    n_items: int = 1  # items of similar size found; the mask keeps one of them
    coverage: float = 0.0  # share of the image the kept mask covers
    fallback: str | None = None  # why the whole image was kept instead, if it was
    all_parts: np.ndarray | None = None  # every part before main-item selection (for the page)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Bounding box (left, top, right, bottom) of the mask in input pixels."""
        ys, xs = np.nonzero(self.mask)
        if len(ys) == 0:
            h, w = self.mask.shape
            return (0, 0, w, h)
        return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def _cv2():
    import cv2

    cv2.setNumThreads(1)  # small images: threads cost more than they give, and cores are shared
    return cv2


def _downscale(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """A copy whose longest side is at most ``side`` (area-averaged), and the scale factor used."""
    cv2 = _cv2()
    h, w = rgb.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale >= 1.0:
        return np.ascontiguousarray(rgb), 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def _band(shape: tuple[int, int], share: float = BORDER_BAND) -> np.ndarray:
    """True on a band along the four edges, ``share`` of each side wide (at least 1 px)."""
    h, w = shape
    by, bx = max(1, round(h * share)), max(1, round(w * share))
    band = np.zeros((h, w), bool)
    band[:by], band[-by:], band[:, :bx], band[:, -bx:] = True, True, True, True
    return band


def border_distance(small: np.ndarray, k: int = 5) -> np.ndarray:
    """Per pixel, the Lab distance to the nearest of ``k`` colours of the border band (float32).

    Several colours, not one, because a bed sheet or a tiled floor has a pattern.
    """
    cv2 = _cv2()
    blurred = cv2.GaussianBlur(small, (5, 5), 0)  # texture and JPEG noise out, shapes in
    lab = cv2.cvtColor(blurred, cv2.COLOR_RGB2LAB).astype(np.float32)
    samples = lab[_band(lab.shape[:2])].reshape(-1, 3)
    k = max(1, min(k, len(samples)))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    cv2.setRNGSeed(0)  # k-means starts from random centres: the same photo gives the same mask
    _, _, centres = cv2.kmeans(samples, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    d = np.linalg.norm(lab[:, :, None, :] - centres[None, None, :, :], axis=3)
    return d.min(axis=2)


def _threshold(dist: np.ndarray, floor: float = 10.0) -> np.ndarray:
    """Otsu's threshold on the distance map, but never below ``floor`` Lab units (plain backgrounds)."""
    cv2 = _cv2()
    d8 = np.clip(dist * (255.0 / max(float(dist.max()), 1e-6)), 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(d8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thr = max(floor, otsu * max(float(dist.max()), 1e-6) / 255.0)
    return dist > thr


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of a binary mask (background not reachable from the image border)."""
    cv2 = _cv2()
    m = np.pad(mask.astype(np.uint8), 1)
    flood = m.copy()
    ff = np.zeros((m.shape[0] + 2, m.shape[1] + 2), np.uint8)
    cv2.floodFill(flood, ff, (0, 0), 1)
    return (mask | (flood[1:-1, 1:-1] == 0)).astype(bool)


def _clean(mask: np.ndarray) -> np.ndarray:
    """Close small gaps, drop specks, fill holes (a garment is one solid shape in the dataset)."""
    cv2 = _cv2()
    side = max(mask.shape)
    k = max(3, (side // 50) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel)
    return fill_holes(m > 0)


def mask_border(small: np.ndarray) -> np.ndarray:
    """The ``border`` method on the small copy."""
    return _clean(_threshold(border_distance(small)))


def mask_grabcut(small: np.ndarray, rect: tuple[int, int, int, int] | None = None, seed: np.ndarray | None = None):
    """GrabCut on the small copy, seeded by ``rect`` (x0, y0, x1, y1), by a ``seed`` mask, or by the border."""
    cv2 = _cv2()
    h, w = small.shape[:2]
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's GMMs start from k-means: seed it so results repeat
    if seed is not None and rect is None:
        gc = np.where(seed, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        gc[_band((h, w))] = cv2.GC_BGD
        if not (gc == cv2.GC_PR_FGD).any():
            return np.zeros((h, w), bool)
        cv2.grabCut(small, gc, None, bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    else:
        if rect is None:
            by, bx = max(1, round(h * BORDER_BAND)), max(1, round(w * BORDER_BAND))
            rect = (bx, by, w - bx, h - by)
        x0, y0, x1, y1 = rect
        x0, y0 = int(np.clip(x0, 0, w - 2)), int(np.clip(y0, 0, h - 2))
        x1, y1 = int(np.clip(x1, x0 + 2, w)), int(np.clip(y1, y0 + 2, h))
        gc = np.zeros((h, w), np.uint8)
        cv2.grabCut(small, gc, (x0, y0, x1 - x0, y1 - y0), bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
    return _clean((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD))


def _pick(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The best-scoring connected part of ``mask`` and how many similar-sized parts it has."""
    cv2 = _cv2()
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask.astype(bool), int(n - 1)
    h, w = mask.shape
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    off = np.linalg.norm((centroids[1:] - centre) / centre, axis=1) / np.sqrt(2)
    score = areas * (1 - 0.5 * off)
    best = int(np.argmax(score))
    items = int(np.sum((areas >= ITEM_SHARE * areas.max()) & (areas >= MIN_ITEM * h * w)))
    return labels == best + 1, max(1, items)


def main_item(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Keep the largest, most central item; also say how many similar-sized items there were.

    Items are the connected parts of the mask after an erosion of ``BRIDGE`` of its size, so two
    shoes that touch at one point, or a garment and a label joined by a thread, count as two.
    Score = area x (1 - 0.5 x distance of its centre from the image centre, 0 at the centre and
    1 in a corner): of two equal shoes the more central one wins, a big garment beats a label.
    The kept item gets back every mask pixel nearer to it than to another item.
    """
    cv2 = _cv2()
    m8 = mask.astype(np.uint8)
    k = max(3, round(BRIDGE * max(mask.shape)) | 1)
    cores = cv2.erode(m8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if cores.sum() < CORE_SHARE * m8.sum():
        return _pick(mask)  # a thin garment (sandal straps) erodes away: no split on that
    core, items = _pick(cores > 0)
    if items < 2:
        return _pick(mask)  # one item: keep all of it, thin parts included
    # Nearest core of every pixel: the distance transform's labels name the zero-pixel parts.
    _, nearest = cv2.distanceTransformWithLabels(
        (1 - cores).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_CCOMP
    )
    mine = np.unique(nearest[core])
    kept = mask & np.isin(nearest, mine)
    return _pick(kept)[0], items


def border_spread(small: np.ndarray) -> float:
    """How much the border varies: 95th percentile of the Lab distance to its median colour."""
    cv2 = _cv2()
    lab = cv2.cvtColor(cv2.GaussianBlur(small, (5, 5), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    band = lab[_band(lab.shape[:2])]
    return float(np.quantile(np.linalg.norm(band - np.median(band, axis=0), axis=1), 0.95))


def _raw_mask(small: np.ndarray, scale: float, method: str, box) -> tuple[np.ndarray, str]:
    """The mask of the small copy by ``method`` (a ``box`` in photo pixels overrides it), and the method used."""
    if box is not None:
        x0, y0, x1, y1 = (float(v) * scale for v in box)
        rect = (round(min(x0, x1)), round(min(y0, y1)), round(max(x0, x1)), round(max(y0, y1)))
        return mask_grabcut(small, rect=rect), "grabcut (box)"
    if method == "grabcut":
        return mask_grabcut(small), method
    if method == "border":
        return mask_border(small), method
    return mask_grabcut(small, seed=mask_border(small)), method


def segment(
    rgb: np.ndarray,
    method: str = DEFAULT_METHOD,
    box: tuple[float, float, float, float] | None = None,
    side: int = SEG_SIDE,
) -> Segmentation:
    """The garment mask of an RGB uint8 photo (H x W x 3), at the photo's size.

    ``box`` (x0, y0, x1, y1 in the photo's pixels), if given, re-seeds GrabCut: outside it is
    background, whatever ``method`` says. When the mask is empty or covers nearly the whole
    photo, the whole photo is kept (``fallback`` says why) and the dataset's own trim decides.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    cv2 = _cv2()
    rgb = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., :3])
    h, w = rgb.shape[:2]
    if method == "none" and box is None:
        return Segmentation(np.ones((h, w), bool), "none", 1, 1.0)
    if min(h, w) < MIN_SIDE:
        return Segmentation(np.ones((h, w), bool), method, 1, 1.0, "too small to segment")
    small, scale = _downscale(rgb, side)
    if box is None and border_spread(small) < PLAIN_SPREAD:
        # A plain studio-like background: the dataset's own trim was made for exactly this.
        return Segmentation(np.ones((h, w), bool), method, 1, 1.0, "plain background")
    try:
        raw, method = _raw_mask(small, scale, method, box)
    except cv2.error:  # e.g. GrabCut on a one-colour image has no samples for one of its models
        return Segmentation(np.ones((h, w), bool), method, 1, 1.0, "no garment found")
    kept, items = main_item(raw) if raw.any() else (raw, 0)
    share = float(kept.mean())
    fallback = None
    if share < 0.01:
        fallback = "no garment found"
    elif share > 0.97:
        fallback = "the garment fills the photo"
    parts = cv2.resize(raw.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    if fallback:
        return Segmentation(np.ones((h, w), bool), method, max(items, 1), 1.0, fallback, parts)
    # Back to full size: a smooth (bilinear) upscale, then threshold, so the edge is not blocky.
    full = cv2.resize(kept.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
    return Segmentation(full, method, items, float(full.mean()), None, parts)
